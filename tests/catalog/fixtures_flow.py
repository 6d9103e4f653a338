"""Catalog flows against the sandbox over real HTTP: the live server plays DR, the outbox sends.

The ``dr`` fixture (in conftest.py) points the client at the sandbox. Pushes wait
``CATALOG_PUSH_DELAY_SECONDS`` before they are due, so the job run on commit finds nothing due yet;
``send_due`` stands in for that wait by sweeping the outbox past its schedule.
"""

from decimal import Decimal

from catalog.models import Sku
from catalog.services import sku_create
from digitalriver.models import ApiCall
from digitalriver.services.outbox import outbox_sweep
from sandbox.models import InventoryItem as DrInventoryItem
from sandbox.models import Sku as DrSku
from sandbox.services.control import control_update

SKU_VALUES = {
    "sku_id": "WIDGET-1",
    "name": "Widget",
    "description": "A physical widget",
    "fulfillment_model": Sku.FulfillmentModel.DISTRIBUTED,
    "tax_code": "4512.1",
    "eccn": "EAR99",
    "hs_code": "8471.30.0100",
    "country_of_origin": "US",
    "part_number": "PN-1",
    "manufacturer_id": "MFR-1",
    "weight": Decimal("12.5"),
    "weight_unit": "oz",
    "item_breadcrumb": "Tools > Widgets",
    "allow_oversell": True,
}

SHARED_KEYS = ("manufacturerId", "partNumber", "countryOfOrigin", "eccn", "hsCode", "allowOversell")


def make_sku(**overrides) -> Sku:
    return sku_create(values={**SKU_VALUES, **overrides})


def send_due():
    """Send every waiting instruction now, as the sender would once the push delay has passed."""
    return outbox_sweep(ignore_backoff=True)


def refresh(sku: Sku) -> Sku:
    return Sku.objects.get(pk=sku.pk)


def dr_sku(sku_id: str) -> dict | None:
    stored = DrSku.objects.filter(dr_id=sku_id).first()
    return stored.data if stored else None


def dr_item(sku_id: str) -> DrInventoryItem | None:
    return DrInventoryItem.objects.filter(dr_id=sku_id).first()


def dr_calls(method: str, path: str) -> int:
    return ApiCall.objects.filter(method=method, path=path).count()


def refuse_next(path: str, *, status: int, method: str = "", count: int = 1) -> None:
    """The sandbox's bad network: the next ``count`` calls to ``path`` answer ``status``."""
    control_update({"next_calls": {"path": path, "status": status, "method": method, "count": count}})


def change_at_dr(sku_id: str, *, sku: dict | None = None, item: dict | None = None) -> None:
    """Change the sandbox's stored copy behind our back, as someone at DR might."""
    if sku:
        stored = DrSku.objects.get(dr_id=sku_id)
        stored.data = {**stored.data, **sku}
        stored.save()
    if item:
        stored_item = DrInventoryItem.objects.get(dr_id=sku_id)
        stored_item.data = {**stored_item.data, **item}
        stored_item.save()
