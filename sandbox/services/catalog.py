"""SKUs, inventory items and stock levels, validated the way DR documents."""

import re
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..countries import ISO_COUNTRIES
from ..errors import ApiError, Errors, conflict, not_found
from ..ids import uuid_id
from ..models import InventoryItem, InventoryLevel, Sku
from ..types import JSONObject

SKU_ID = re.compile(r"^[0-9A-Za-z._-]{1,100}$")
# DR documents `####.##.####` with the first six digits required; the last group may be shorter.
HS_CODE = re.compile(r"^\d{4}\.\d{2}(\.\d{1,4})?$")
WEIGHT_UNITS = ("oz", "lb", "g", "kg")
MANAGED = "DRGlobalFulfillment"

# DR decides physical vs digital from the tax code (its table is a PDF). The digital codes the
# sandbox knows: 4512.2 (electronic download), 4512.3, 4500.2, and 4512.100, the code DR's own
# orchestrated example refuses as not physical (product-management/creating-and-updating-skus.md).
# Every other code plays a physical good, as DR's managed physical example 4323.310_A is.
DIGITAL_TAX_CODES = frozenset({"4512.2", "4512.3", "4500.2", "4512.100"})

# What a SKU request may carry: the spec's SkuUpsertRequest (DR's OpenAPI file, version
# 2021-12-13), plus itemBreadcrumb, which DR's page product-management/creating-and-updating-skus.md
# documents. allowOversell is not among them from version 2021-12-13 (the same page, #allow-oversell):
# a SKU body carrying it is refused like any unknown field, `400 unknown_parameter`.
SKU_FIELDS = frozenset(
    {
        "name",
        "description",
        "taxCode",
        "eccn",
        "countryOfOrigin",
        "hsCode",
        "partNumber",
        "manufacturerId",
        "weight",
        "weightUnit",
        "managedFulfillment",
        "skuGroupId",
        "image",
        "url",
        "itemBreadcrumb",
        "metadata",
    }
)
READ_ONLY = frozenset({"id", "physical", "createdTime", "updatedTime", "liveMode"})
# The spec's InventoryItemRequest / InventoryItemUpdateRequest.
INVENTORY_FIELDS = frozenset({"partNumber", "manufacturerId", "eccn", "hsCode", "countryOfOrigin", "allowOversell"})
SHARED_FIELDS = ("manufacturerId", "partNumber", "countryOfOrigin", "eccn", "hsCode")

DEFAULT_LOCATION = "sandbox-warehouse-1"
DEFAULT_STOCK = 100


def tax_code_is_physical(tax_code: str | None) -> bool:
    if not tax_code:
        # A SKU group supplies the tax code; the sandbox has no groups and treats them as physical goods.
        return True
    return tax_code not in DIGITAL_TAX_CODES


def check_id(value: Any, parameter: str = "id") -> str:
    if not isinstance(value, str) or not SKU_ID.match(value):
        raise ApiError(
            400,
            [("invalid_parameter", parameter, f"'{value}' is not a valid id: use only 0-9 A-Z a-z . _ -")],
        )
    return value


def _unknown(body: JSONObject, allowed: frozenset[str]) -> None:
    errors = Errors()
    for key in body:
        if key not in allowed and key not in READ_ONLY:
            # DR's words for it (integration-options/checkouts/creating-checkouts/describing-the-items/README.md).
            errors.add("unknown_parameter", key, f"'{key}' is an unknown parameter.")
    errors.raise_if_any()


def validate_sku(data: JSONObject) -> JSONObject:
    """Return the stored form of a SKU (DR's keys, `physical` computed) or raise a 400 naming every field."""
    _unknown(data, SKU_FIELDS)
    data = {key: value for key, value in data.items() if key in SKU_FIELDS and value is not None}
    errors = Errors()
    if not isinstance(data.get("name"), str) or not data.get("name", "").strip():
        errors.missing("name")
    if "description" in data and (not isinstance(data["description"], str) or len(data["description"]) > 1000):
        errors.invalid("description", "'description' must be a string of at most 1000 characters.")
    if not data.get("skuGroupId"):
        for field in ("taxCode", "eccn", "countryOfOrigin"):
            if not data.get(field):
                errors.add("missing_parameter", field, f"'{field}' is required unless 'skuGroupId' supplies it.")
    for field in ("taxCode", "eccn", "skuGroupId", "partNumber", "manufacturerId", "image"):
        if field in data and not isinstance(data[field], str):
            errors.invalid(field, f"'{field}' must be a string.")
    country = data.get("countryOfOrigin")
    if country and country not in ISO_COUNTRIES:
        errors.invalid("countryOfOrigin", f"'{country}' is not an ISO 3166-1 alpha-2 country code.")
    hs_code = data.get("hsCode")
    if hs_code is not None and (not isinstance(hs_code, str) or not HS_CODE.match(hs_code)):
        errors.invalid("hsCode", f"'{hs_code}' is not a valid HS code: use ####.##.#### (first six digits required).")
    physical = tax_code_is_physical(data.get("taxCode") if isinstance(data.get("taxCode"), str) else None)
    for field in ("partNumber", "manufacturerId"):
        if data.get(field) and not physical:
            errors.invalid(field, f"'{field}' applies to physical products only.")
    if "weight" in data:
        weight = data["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            errors.invalid("weight", "'weight' must be a non-negative number.")
        data.setdefault("weightUnit", "oz")
    if "weightUnit" in data and data["weightUnit"] not in WEIGHT_UNITS:
        errors.invalid("weightUnit", f"'{data['weightUnit']}' is not a weight unit: use oz, lb, g or kg.")
    managed = data.get("managedFulfillment")
    if managed not in (None, MANAGED):
        errors.invalid("managedFulfillment", f"'managedFulfillment' must be '{MANAGED}' or null.")
    elif managed == MANAGED:
        if not physical:
            errors.invalid("taxCode", "A SKU with managed fulfillment needs a physical 'taxCode'.")
        if not data.get("partNumber"):
            errors.add("missing_parameter", "partNumber", "A SKU with managed fulfillment needs a 'partNumber'.")
    breadcrumb = data.get("itemBreadcrumb")
    if breadcrumb is not None and (
        not isinstance(breadcrumb, str)
        or any(not part.strip() for trail in breadcrumb.split(";") for part in trail.split(">"))
    ):
        errors.invalid("itemBreadcrumb", "'itemBreadcrumb' must look like 'A > B', several joined by ';'.")
    if "metadata" in data and not isinstance(data["metadata"], dict):
        errors.invalid("metadata", "'metadata' must be an object.")
    if "url" in data and (not isinstance(data["url"], str) or not data["url"].startswith(("http://", "https://"))):
        errors.invalid("url", "'url' must be an http(s) URL.")
    errors.raise_if_any()
    data["physical"] = physical
    if data.get("managedFulfillment") is None:
        data["managedFulfillment"] = None
    return data


def _check_manufacturer(item_id: str, data: JSONObject) -> None:
    part, maker = data.get("partNumber"), data.get("manufacturerId")
    if not part or not maker:
        return
    for other in InventoryItem.objects.exclude(dr_id=item_id):
        other_maker = other.data.get("manufacturerId")
        if other.data.get("partNumber") == part and other_maker and other_maker != maker:
            # DR documents the 409 for a manufacturer id that does not match the part number, not its code.
            raise conflict(
                "invalid_parameter",
                "manufacturerId",
                f"Manufacturer id '{maker}' does not match part number '{part}' (known as '{other_maker}').",
            )


def sku_put(*, sku_id: str, body: JSONObject) -> tuple[Sku, bool]:
    """The upsert of `PUT /skus/{id}`: the body replaces the SKU. Returns (sku, created)."""
    check_id(sku_id)
    if "id" in body and body["id"] != sku_id:
        raise ApiError(400, [("invalid_parameter", "id", "The body's 'id' differs from the one in the path.")])
    data = validate_sku(body)
    with transaction.atomic():
        sku = Sku.objects.select_for_update().filter(dr_id=sku_id).first()
        created = sku is None
        return _sku_save(sku or Sku(dr_id=sku_id), data), created


def sku_create(*, body: JSONObject) -> Sku:
    sku_id = check_id(body.get("id")) if "id" in body else uuid_id()
    data = validate_sku(body)
    with transaction.atomic():
        if Sku.objects.filter(dr_id=sku_id).exists():
            raise conflict("already_exists", "id", f"Resource '{sku_id}' already exists.")
        return _sku_save(Sku(dr_id=sku_id), data)


def sku_update(*, sku_id: str, body: JSONObject) -> Sku:
    """`POST /skus/{id}`: a partial update; `null` removes a field."""
    with transaction.atomic():
        sku = Sku.objects.select_for_update().filter(dr_id=sku_id).first()
        if sku is None:
            raise not_found("id", sku_id)
        if "id" in body and body["id"] != sku_id:
            raise ApiError(400, [("invalid_parameter", "id", "The body's 'id' differs from the one in the path.")])
        merged = {key: value for key, value in sku.data.items() if key != "physical"}
        merged.update(body)
        return _sku_save(sku, validate_sku(merged))


def _sku_save(sku: Sku, data: JSONObject) -> Sku:
    if data.get("managedFulfillment") == MANAGED:
        _check_manufacturer(sku.dr_id, data)
    now = timezone.now()
    sku.data = data
    sku.updated_time = now
    sku.save()
    item = InventoryItem.objects.filter(dr_id=sku.dr_id).first()
    shared = {field: data[field] for field in SHARED_FIELDS if field in data}
    if data.get("managedFulfillment") == MANAGED:
        if item is None:
            item = InventoryItem(dr_id=sku.dr_id, created_time=now)
        item.data = {**{k: v for k, v in item.data.items() if k not in SHARED_FIELDS}, **shared}
        item.managed = True
        item.updated_time = now
        item.save()
        _ensure_level(item)
    elif item is not None and item.managed:
        item.delete()
    return sku


def sku_delete(*, sku_id: str) -> None:
    with transaction.atomic():
        sku = Sku.objects.select_for_update().filter(dr_id=sku_id).first()
        if sku is None:
            raise not_found("id", sku_id)
        InventoryItem.objects.filter(dr_id=sku_id).delete()
        sku.delete()


def validate_inventory_item(data: JSONObject) -> JSONObject:
    _unknown(data, INVENTORY_FIELDS)
    data = {key: value for key, value in data.items() if key in INVENTORY_FIELDS and value is not None}
    errors = Errors()
    if not isinstance(data.get("partNumber"), str) or not data.get("partNumber", "").strip():
        errors.missing("partNumber")
    country = data.get("countryOfOrigin")
    if country is not None and country not in ISO_COUNTRIES:
        errors.invalid("countryOfOrigin", f"'{country}' is not an ISO 3166-1 alpha-2 country code.")
    hs_code = data.get("hsCode")
    if hs_code is not None and (not isinstance(hs_code, str) or not HS_CODE.match(hs_code)):
        errors.invalid("hsCode", f"'{hs_code}' is not a valid HS code: use ####.##.#### (first six digits required).")
    if "allowOversell" in data and not isinstance(data["allowOversell"], bool):
        errors.invalid("allowOversell", "'allowOversell' must be true or false.")
    errors.raise_if_any()
    return data


def inventory_item_create(*, body: JSONObject) -> InventoryItem:
    item_id = check_id(body["id"]) if body.get("id") is not None else uuid_id()
    data = validate_inventory_item(body)
    with transaction.atomic():
        if InventoryItem.objects.filter(dr_id=item_id).exists():
            raise conflict("already_exists", "id", f"Resource '{item_id}' already exists.")
        _check_manufacturer(item_id, data)
        item = InventoryItem.objects.create(dr_id=item_id, data=data)
        _ensure_level(item)
        return item


def _editable_item(item_id: str) -> InventoryItem:
    item = InventoryItem.objects.select_for_update().filter(dr_id=item_id).first()
    if item is None:
        raise not_found("id", item_id)
    if item.managed:
        raise conflict(
            "managed_inventory_item",
            "id",
            f"Inventory item '{item_id}' is managed by Digital River for its SKU; change the SKU instead.",
        )
    return item


def inventory_item_update(*, item_id: str, body: JSONObject) -> InventoryItem:
    with transaction.atomic():
        item = _editable_item(item_id)
        merged = {**item.data, **body}
        merged.pop("id", None)
        data = validate_inventory_item(merged)
        _check_manufacturer(item_id, data)
        item.data = data
        item.updated_time = timezone.now()
        item.save()
        return item


def inventory_item_delete(*, item_id: str) -> None:
    with transaction.atomic():
        _editable_item(item_id).delete()


def _ensure_level(item: InventoryItem) -> None:
    if not item.levels.exists():
        InventoryLevel.objects.create(
            inventory_item=item, location_id=DEFAULT_LOCATION, available_quantity=DEFAULT_STOCK
        )


def inventory_level_set(
    *, item_id: str, location_id: str, available_quantity: int, available_time: datetime | None = None
) -> InventoryLevel:
    """The warehouse's stock, edited on the sandbox page."""
    with transaction.atomic():
        item = InventoryItem.objects.filter(dr_id=item_id).first()
        if item is None:
            raise not_found("inventoryItemId", item_id)
        level, _ = InventoryLevel.objects.select_for_update().get_or_create(
            inventory_item=item, location_id=location_id
        )
        level.available_quantity = available_quantity
        level.available_time = available_time
        level.updated_time = timezone.now()
        level.save()
        return level
