"""`/fulfillment-returns`, `/returns`, `/refunds`."""

from django.http import HttpRequest

from ..errors import not_found
from ..models import FulfillmentReturn, Refund, Return
from ..services import refunds, returns
from .base import Answer, endpoint, json_body, paginate, query_list


def list_fulfillment_returns(request: HttpRequest) -> Answer:
    """Filtered by `fulfillmentOrderId`, `upstreamIds`, `state` (and `inventoryItemId`), as the spec lists."""
    queryset = FulfillmentReturn.objects.select_related("fulfillment_order")
    if request.GET.get("fulfillmentOrderId"):
        queryset = queryset.filter(fulfillment_order__dr_id=request.GET["fulfillmentOrderId"])
    upstream_ids = query_list(request, "upstreamIds")
    if upstream_ids:
        queryset = queryset.filter(upstream_id__in=upstream_ids)
    states = query_list(request, "state")
    if states:
        queryset = queryset.filter(state__in=states)
    if request.GET.get("inventoryItemId"):
        queryset = queryset.filter(items__fulfillment_order_item__inventory_item_id=request.GET["inventoryItemId"])
    return 200, paginate(request, queryset.distinct())


def create_fulfillment_return(request: HttpRequest) -> Answer:
    return 201, returns.fulfillment_return_create(body=json_body(request)).as_dr()


def get_fulfillment_return(request: HttpRequest, return_id: str) -> Answer:
    found = FulfillmentReturn.objects.filter(dr_id=return_id).first()
    if found is None:
        raise not_found("id", return_id)
    return 200, found.as_dr()


def list_returns(request: HttpRequest) -> Answer:
    queryset = Return.objects.select_related("order")
    if request.GET.get("orderId"):
        queryset = queryset.filter(order__dr_id=request.GET["orderId"])
    states = query_list(request, "state")
    if states:
        queryset = queryset.filter(state__in=states)
    if request.GET.get("skuId"):
        queryset = queryset.filter(items__order_item__sku_id=request.GET["skuId"])
    return 200, paginate(request, queryset.distinct())


def create_return(request: HttpRequest) -> Answer:
    return 201, returns.return_create(body=json_body(request)).as_dr(created=True)


def get_return(request: HttpRequest, return_id: str) -> Answer:
    found = Return.objects.filter(dr_id=return_id).first()
    if found is None:
        raise not_found("id", return_id)
    return 200, found.as_dr()


def update_return(request: HttpRequest, return_id: str) -> Answer:
    return 200, returns.return_update(return_id=return_id, body=json_body(request)).as_dr()


def list_refunds(request: HttpRequest) -> Answer:
    queryset = Refund.objects.select_related("order", "charge_operation__charge__source")
    if request.GET.get("orderId"):
        queryset = queryset.filter(order__dr_id=request.GET["orderId"])
    states = query_list(request, "state")
    if states:
        queryset = queryset.filter(state__in=states)
    return 200, paginate(request, queryset)


def create_refund(request: HttpRequest) -> Answer:
    return 201, refunds.refund_create(body=json_body(request)).as_dr()


def get_refund(request: HttpRequest, refund_id: str) -> Answer:
    found = Refund.objects.filter(dr_id=refund_id).first()
    if found is None:
        raise not_found("id", refund_id)
    return 200, found.as_dr()


fulfillment_returns = endpoint(get=list_fulfillment_returns, post=create_fulfillment_return)
fulfillment_return = endpoint(get=get_fulfillment_return)
returns_list = endpoint(get=list_returns, post=create_return)
return_detail = endpoint(get=get_return, post=update_return)
refunds_list = endpoint(get=list_refunds, post=create_refund)
refund_detail = endpoint(get=get_refund)
