"""Our SKU in DR's words, and DR's words back in ours."""

from decimal import Decimal

from django_countries.fields import Country

from .models import Sku
from .rules import SHARED_ATTRIBUTES

MANAGED_FULFILLMENT = "DRGlobalFulfillment"

# Our field -> DR's SKU key, for every field a merchandiser edits.
SKU_FIELDS = (
    ("name", "name"),
    ("description", "description"),
    ("tax_code", "taxCode"),
    ("eccn", "eccn"),
    ("hs_code", "hsCode"),
    ("country_of_origin", "countryOfOrigin"),
    ("part_number", "partNumber"),
    ("manufacturer_id", "manufacturerId"),
    ("weight", "weight"),
    ("weight_unit", "weightUnit"),
    ("image", "image"),
    ("url", "url"),
    ("item_breadcrumb", "itemBreadcrumb"),
    ("sku_group_id", "skuGroupId"),
    ("allow_oversell", "allowOversell"),
)
PHYSICAL_ONLY = frozenset({"partNumber", "manufacturerId"})


def _wire(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value.code if isinstance(value, Country) else value


def sku_body(sku: Sku) -> dict:
    """The body of PUT /skus/{id}: empty values left out, managedFulfillment always said."""
    body = {}
    for field, key in SKU_FIELDS:
        value = _wire(getattr(sku, field))
        if value in ("", None) or (key in PHYSICAL_ONLY and not sku.is_physical):
            continue
        if key == "weightUnit" and sku.weight is None:
            continue
        body[key] = value
    body["managedFulfillment"] = (
        MANAGED_FULFILLMENT if sku.fulfillment_model == Sku.FulfillmentModel.ORCHESTRATED else None
    )
    return body


def inventory_item_body(sku: Sku) -> dict:
    """Every shared attribute of the same-id inventory item (DR requires partNumber).

    An empty one is sent as null: the item is updated with a partial update, where a left-out key
    would keep DR's old value and only null removes it.
    """
    body = {}
    for field, key in SHARED_ATTRIBUTES:
        value = _wire(getattr(sku, field))
        body[key] = None if value == "" else value
    return body


def our_values_from_dr(dr_sku: dict, *, current_model: str = Sku.FulfillmentModel.DISTRIBUTED) -> dict:
    """Our field values from DR's SKU object, for 'take DR's values'.

    DR's SKU says only whether DR manages fulfillment: a managed SKU is orchestrated here, and an
    orchestrated one DR no longer manages becomes third party (DR deleted its inventory item; we
    keep none of ours for it). Otherwise our model stands.
    """
    values = {"fulfillment_model": current_model}
    if dr_sku.get("managedFulfillment") == MANAGED_FULFILLMENT:
        values["fulfillment_model"] = Sku.FulfillmentModel.ORCHESTRATED
    elif current_model == Sku.FulfillmentModel.ORCHESTRATED:
        values["fulfillment_model"] = Sku.FulfillmentModel.THIRD_PARTY
    for field, key in SKU_FIELDS:
        value = dr_sku.get(key)
        if field == "weight":
            values[field] = Decimal(str(value)) if value is not None else None
        elif field == "allow_oversell":
            values[field] = bool(value)
        elif field == "weight_unit":
            values[field] = value or Sku.WeightUnit.OZ
        else:
            values[field] = value if value is not None else ""
    return values


def differences(sku: Sku, dr_sku: dict | None, dr_inventory_item: dict | None) -> list[dict]:
    """Each DR key where DR's SKU or inventory item differs from our values."""
    ours = sku_body(sku)
    rows = []
    if dr_sku is None:
        return [{"field": "sku", "ours": "exists", "sku": "missing at DR", "inventory_item": None}]
    for _, key in SKU_FIELDS:
        our_value, their_value = ours.get(key), _normal(dr_sku.get(key))
        shared_key = key in {dr_key for _, dr_key in SHARED_ATTRIBUTES}
        item_value = _normal(dr_inventory_item.get(key)) if (dr_inventory_item is not None and shared_key) else None
        sku_differs = _normal(our_value) != their_value
        item_differs = dr_inventory_item is not None and shared_key and _normal(our_value) != item_value
        if sku_differs or item_differs:
            rows.append({"field": key, "ours": our_value, "sku": their_value, "inventory_item": item_value})
    if _normal(ours.get("managedFulfillment")) != _normal(dr_sku.get("managedFulfillment")):
        rows.append(
            {
                "field": "managedFulfillment",
                "ours": ours["managedFulfillment"],
                "sku": dr_sku.get("managedFulfillment"),
                "inventory_item": None,
            }
        )
    if sku.has_inventory_item_of_ours and dr_inventory_item is None:
        rows.append({"field": "inventoryItem", "ours": "exists", "sku": None, "inventory_item": "missing at DR"})
    return rows


def _normal(value):
    """Compare values the way DR stores them: no empty strings, numbers as numbers, False as absent."""
    if value in ("", None, False):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
