"""Reads for the catalog's screens: DR's stock of a SKU, its drift as a table, its sync history."""

from __future__ import annotations

from dataclasses import dataclass, field

from django_fsm_log.models import StateLog

from digitalriver import errors as dr_errors
from digitalriver.client import calls_about, get_client

from . import dr_mapping
from .models import Sku
from .rules import SHARED_ATTRIBUTES

SHARED_DR_KEYS = frozenset(key for _, key in SHARED_ATTRIBUTES)
# Our label for each of DR's keys, so the drift table speaks the merchandiser's words.
FIELD_LABELS = {key: str(Sku._meta.get_field(name).verbose_name) for name, key in dr_mapping.SKU_FIELDS} | {
    "managedFulfillment": "fulfillment model (managedFulfillment)",
    "sku": "SKU",
    "inventoryItem": "inventory item",
}


@dataclass(frozen=True)
class StockLevels:
    """DR's stock rows, one per warehouse; ``error`` says why there are none when DR did not answer."""

    rows: list[dict] = field(default_factory=list)
    error: str = ""


def sku_has_stock_at_dr(sku: Sku) -> bool:
    """Only a pushed physical SKU with an inventory item (ours or DR's) has stock levels at DR."""
    return sku.sync_state != Sku.SyncState.DRAFT and sku.fulfillment_model in (
        Sku.FulfillmentModel.DISTRIBUTED,
        Sku.FulfillmentModel.ORCHESTRATED,
    )


def sku_stock_levels(*, sku: Sku) -> StockLevels:
    """GET /inventory-levels for the SKU's same-id inventory item. DR sends no inventory events: poll."""
    try:
        with calls_about(f"sku:{sku.sku_id}"):
            answer = get_client().get("/inventory-levels", {"inventoryItemIds": sku.sku_id}, while_a_person_waits=True)
    except dr_errors.DigitalRiverError as exc:
        if exc.transient:
            return StockLevels(error=f"Digital River could not be reached for stock levels; try again shortly. ({exc})")
        return StockLevels(error=f"Digital River refused the stock request: {exc}")
    return StockLevels(rows=list((answer or {}).get("data", [])))


def sku_drift_table(*, sku: Sku) -> list[dict]:
    """The last drift check as table rows, each saying which of DR's two copies differs from ours."""
    item_known = sku.dr_inventory_item is not None
    rows = []
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


def _comparable(value):
    """DR leaves empty values out, so empty, null and false all mean absent; 2.0 and 2 are one weight."""
    if value in ("", None, False):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def sku_sync_history(*, sku: Sku, limit: int = 20) -> list[StateLog]:
    """The SKU's latest sync-state transitions, newest first."""
    return list(StateLog.objects.for_(sku).select_related("by").order_by("-timestamp", "-pk")[:limit])
