"""`/skus`, `/inventory-items`, `/inventory-levels`."""

from django.http import HttpRequest

from ..errors import missing, not_found
from ..models import InventoryItem, InventoryLevel, Sku
from ..services import catalog
from .base import Answer, endpoint, json_body, paginate, query_bool, query_list


def _sku(sku_id: str) -> Sku:
    sku = Sku.objects.filter(dr_id=sku_id).first()
    if sku is None:
        raise not_found("id", sku_id)
    return sku


def list_skus(request: HttpRequest) -> Answer:
    queryset = Sku.objects.all()
    for param, key in (("skuGroupId", "skuGroupId"), ("taxCode", "taxCode"), ("eccn", "eccn")):
        if request.GET.get(param):
            queryset = queryset.filter(**{f"data__{key}": request.GET[param]})
    return 200, paginate(request, queryset)


def create_sku(request: HttpRequest) -> Answer:
    return 201, catalog.sku_create(body=json_body(request)).as_dr()


def get_sku(request: HttpRequest, sku_id: str) -> Answer:
    return 200, _sku(sku_id).as_dr()


def put_sku(request: HttpRequest, sku_id: str) -> Answer:
    sku, created = catalog.sku_put(sku_id=sku_id, body=json_body(request))
    return (201 if created else 200), sku.as_dr()


def update_sku(request: HttpRequest, sku_id: str) -> Answer:
    return 200, catalog.sku_update(sku_id=sku_id, body=json_body(request)).as_dr()


def delete_sku(request: HttpRequest, sku_id: str) -> Answer:
    catalog.sku_delete(sku_id=sku_id)
    return 204, None


def list_inventory_items(request: HttpRequest) -> Answer:
    queryset = InventoryItem.objects.all()
    for param in ("partNumber", "manufacturerId"):
        if request.GET.get(param):
            queryset = queryset.filter(**{f"data__{param}": request.GET[param]})
    return 200, paginate(request, queryset)


def create_inventory_item(request: HttpRequest) -> Answer:
    return 201, catalog.inventory_item_create(body=json_body(request)).as_dr()


def get_inventory_item(request: HttpRequest, item_id: str) -> Answer:
    item = InventoryItem.objects.filter(dr_id=item_id).first()
    if item is None:
        raise not_found("id", item_id)
    return 200, item.as_dr()


def update_inventory_item(request: HttpRequest, item_id: str) -> Answer:
    # 201, as DR's spec lists for updateInventoryItems (its only success status), odd as it is.
    return 201, catalog.inventory_item_update(item_id=item_id, body=json_body(request)).as_dr()


def delete_inventory_item(request: HttpRequest, item_id: str) -> Answer:
    catalog.inventory_item_delete(item_id=item_id)
    return 204, None


def list_inventory_levels(request: HttpRequest) -> Answer:
    ids = query_list(request, "inventoryItemIds")
    if not ids:
        raise missing("inventoryItemIds")
    queryset = InventoryLevel.objects.select_related("inventory_item").filter(inventory_item__dr_id__in=ids)
    available = query_bool(request, "available")
    levels = [level.as_dr() for level in queryset]
    if available is not None:
        levels = [level for level in levels if level["available"] == available]
    # The sandbox's warehouses ship everywhere, so `shipToCountry` narrows nothing.
    return 200, {"data": levels}


skus = endpoint(get=list_skus, post=create_sku)
sku = endpoint(get=get_sku, put=put_sku, post=update_sku, delete=delete_sku)
inventory_items = endpoint(get=list_inventory_items, post=create_inventory_item)
inventory_item = endpoint(get=get_inventory_item, post=update_inventory_item, delete=delete_inventory_item)
inventory_levels = endpoint(get=list_inventory_levels)
