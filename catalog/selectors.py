"""Reads for the catalog's screens: a SKU's stock and drift as last fetched from DR, its sync history.

Nothing here asks DR: what DR says is fetched by the services (``sku_drift_fetch``,
``sku_stock_fetch``) when someone asks for it, and stored.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Field
from django_fsm_log.models import StateLog

from core.types import JSONObject

from . import dr_mapping
from .models import Sku
from .rules import SHARED_ATTRIBUTES

SHARED_DR_KEYS = frozenset(key for _, key in SHARED_ATTRIBUTES)


def _label(name: str) -> str:
    field = Sku._meta.get_field(name)
    assert isinstance(field, Field)  # SKU_FIELDS names the SKU's own columns, never a relation
    return str(field.verbose_name)


# Our label for each of DR's keys, so the drift table speaks the merchandiser's words.
FIELD_LABELS = {key: _label(name) for name, key in dr_mapping.SKU_FIELDS} | {
    "managedFulfillment": "fulfillment model (managedFulfillment)",
    "sku": "SKU",
    "inventoryItem": "inventory item",
}


NO_STOCK_AT_DR = "Only a pushed distributed or orchestrated SKU has an inventory item, and so stock, at Digital River."


@dataclass(frozen=True)
class StockLevels:
    """DR's stock rows, one per warehouse, as last fetched; ``fetched_at`` is None when never fetched."""

    rows: list[JSONObject] = field(default_factory=list)
    fetched_at: datetime.datetime | None = None


def sku_has_stock_at_dr(sku: Sku) -> bool:
    """Only a pushed physical SKU with an inventory item (ours or DR's) has stock levels at DR."""
    return sku.sync_state != Sku.SyncState.DRAFT and sku.fulfillment_model in (
        Sku.FulfillmentModel.DISTRIBUTED,
        Sku.FulfillmentModel.ORCHESTRATED,
    )


def sku_stock_levels(*, sku: Sku) -> StockLevels:
    """The stock levels stored by the last ``sku_stock_fetch``; no call to DR."""
    return StockLevels(rows=list(sku.stock_levels or []), fetched_at=sku.stock_fetched_at)


def sku_drift_table(*, sku: Sku) -> list[dict[str, Any]]:
    """The last drift check as table rows, each saying which of DR's two copies differs from ours."""
    item_known = sku.dr_inventory_item is not None
    rows: list[dict[str, Any]] = []
    for row in sku.drift or []:
        key = row["field"]
        ours = _comparable(row.get("ours"))
        rows.append(
            {
                "field": key,
                "label": FIELD_LABELS.get(key, key),
                "ours": row.get("ours"),
                "sku": row.get("sku"),
                "inventory_item": row.get("inventory_item"),
                "sku_differs": key != "inventoryItem" and ours != _comparable(row.get("sku")),
                "item_differs": key == "inventoryItem"
                or (item_known and key in SHARED_DR_KEYS and ours != _comparable(row.get("inventory_item"))),
            }
        )
    return rows


def _comparable(value: Any) -> Any:
    """DR leaves empty values out, so empty, null and false all mean absent; 2.0 and 2 are one weight."""
    if value in ("", None, False):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def sku_sync_history(*, sku: Sku, limit: int = 20) -> list[StateLog]:
    """The SKU's latest sync-state transitions, newest first."""
    return list(StateLog.objects.for_(sku).select_related("by").order_by("-timestamp", "-pk")[:limit])
