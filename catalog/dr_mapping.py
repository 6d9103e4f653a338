"""Our SKU in DR's words, and DR's words back in ours."""

from decimal import Decimal
from typing import Any

from django_countries.fields import Country

from .models import Sku
from .rules import SHARED_ATTRIBUTES

MANAGED_FULFILLMENT = "DRGlobalFulfillment"

# Our field -> DR's key, for every field a merchandiser edits (a change to any of them is pushed).
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
# From API version 2021-12-13 a SKU's allowOversell cannot be set (DR's page
# product-management/creating-and-updating-skus.md#allow-oversell; SkuUpsertRequest does not name it,
# so DR answers 400 unknown_parameter): it is sent on the inventory item only.
ITEM_ONLY_FIELDS = (("allow_oversell", "allowOversell"),)
ITEM_ONLY_KEYS = frozenset(key for _, key in ITEM_ONLY_FIELDS)
PHYSICAL_ONLY = frozenset({"partNumber", "manufacturerId"})


def _wire(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value.code if isinstance(value, Country) else value


def sku_body(sku: Sku) -> dict:
    """The body of PUT /skus/{id}: empty values left out, never allowOversell.

    managedFulfillment is sent only as "DRGlobalFulfillment" (the spec's only value); a SKU DR should
    stop managing has it left out here, and the push removes it with the update request DR's page
    documents (see ``UNMANAGE_BODY``).
    """
    body = {}
    for field, key in SKU_FIELDS:
        if key in ITEM_ONLY_KEYS:
            continue
        value = _wire(getattr(sku, field))
        if value in ("", None) or (key in PHYSICAL_ONLY and not sku.is_physical):
            continue
        if key == "weightUnit" and sku.weight is None:
            continue
        body[key] = value
    if sku.fulfillment_model == Sku.FulfillmentModel.ORCHESTRATED:
        body["managedFulfillment"] = MANAGED_FULFILLMENT
    return body


#: POST /skus/{id}: "set managedFulfillment to null in an update SKU request" removes DR as the
#: fulfillment coordinator and deletes its inventory item (DR's page
#: product-management/creating-and-updating-skus.md, "Creating and updating SKU-Inventory Item pairs").
#: The spec's UpdateSkuRequest does not allow null there; the page is the only documented way.
UNMANAGE_BODY = {"managedFulfillment": None}


def inventory_item_body(sku: Sku) -> dict:
    """The shared attributes of the same-id inventory item, with allowOversell (DR requires partNumber).

    Empty values are left out: InventoryItemRequest and InventoryItemUpdateRequest take strings, never
    null, and DR documents no way to clear an attribute of an item; a value cleared here stays at DR
    and the drift check shows it.
    """
    body = {}
    for field, key in dict.fromkeys((*SHARED_ATTRIBUTES, *ITEM_ONLY_FIELDS)):
        value = _wire(getattr(sku, field))
        if value not in ("", None):
            body[key] = value
    return body


def our_values_from_dr(dr_sku: dict, *, current_model: str = Sku.FulfillmentModel.DISTRIBUTED) -> dict:
    """Our field values from DR's SKU object, for 'take DR's values'.

    DR's SKU says only whether DR manages fulfillment: a managed SKU is orchestrated here, and an
    orchestrated one DR no longer manages becomes third party (DR deleted its inventory item; we
    keep none of ours for it). Otherwise our model stands.
    """
    values: dict[str, Any] = {"fulfillment_model": current_model}
    if dr_sku.get("managedFulfillment") == MANAGED_FULFILLMENT:
        values["fulfillment_model"] = Sku.FulfillmentModel.ORCHESTRATED
    elif current_model == Sku.FulfillmentModel.ORCHESTRATED:
        values["fulfillment_model"] = Sku.FulfillmentModel.THIRD_PARTY
    for field, key in SKU_FIELDS:
        if key in ITEM_ONLY_KEYS:
            continue  # not the SKU's: ours stands, and the push sets it on the item
        value = dr_sku.get(key)
        if field == "weight":
            values[field] = Decimal(str(value)) if value is not None else None
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
    shared_keys = {dr_key for _, dr_key in SHARED_ATTRIBUTES}
    for _, key in SKU_FIELDS:
        if key in ITEM_ONLY_KEYS:
            continue
        our_value, their_value = ours.get(key), _normal(dr_sku.get(key))
        shared_key = key in shared_keys
        item_value = _normal(dr_inventory_item.get(key)) if (dr_inventory_item is not None and shared_key) else None
        sku_differs = _normal(our_value) != their_value
        item_differs = dr_inventory_item is not None and shared_key and _normal(our_value) != item_value
        if sku_differs or item_differs:
            rows.append({"field": key, "ours": our_value, "sku": their_value, "inventory_item": item_value})
    if dr_inventory_item is not None and sku.has_inventory_item_of_ours:
        # allowOversell is the item's alone: DR's SKU may still show one, but it is not ours to set.
        for field, key in ITEM_ONLY_FIELDS:
            our_value, item_value = getattr(sku, field), _normal(dr_inventory_item.get(key))
            if _normal(our_value) != item_value:
                rows.append({"field": key, "ours": our_value, "sku": None, "inventory_item": item_value})
    if _normal(ours.get("managedFulfillment")) != _normal(dr_sku.get("managedFulfillment")):
        rows.append(
            {
                "field": "managedFulfillment",
                "ours": ours.get("managedFulfillment"),
                "sku": dr_sku.get("managedFulfillment"),
                "inventory_item": None,
            }
        )
    if sku.has_inventory_item_of_ours and dr_inventory_item is None:
        rows.append({"field": "inventoryItem", "ours": "exists", "sku": None, "inventory_item": "missing at DR"})
    return rows


def _normal(value: Any) -> Any:
    """Compare values the way DR stores them: no empty strings, numbers as numbers, False as absent."""
    if value in ("", None, False):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
