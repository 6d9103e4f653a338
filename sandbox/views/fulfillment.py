"""`/fulfillment-orders` and `/fulfillment-cancellations`."""

from django.http import HttpRequest

from ..errors import invalid, not_found
from ..models import FulfillmentCancellation, FulfillmentOrder
from ..services import warehouse
from .base import Answer, endpoint, json_body, paginate, query_list


def list_fulfillment_orders(request: HttpRequest) -> Answer:
    """DR answers `data` only here, without `hasMore`; the notes document the `upstreamIds` filter."""
    raw_limit = request.GET.get("limit", "10")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise invalid("limit", "'limit' must be an integer between 1 and 100.")
    queryset = FulfillmentOrder.objects.prefetch_related("items").order_by("-pk")
    upstream_ids = query_list(request, "upstreamIds")
    if upstream_ids:
        queryset = queryset.filter(upstream_id__in=upstream_ids)
    ids = query_list(request, "ids")
    if ids:
        queryset = queryset.filter(dr_id__in=ids)
    return 200, {"data": [fulfillment_order.as_dr() for fulfillment_order in queryset[: int(raw_limit)]]}


def create_fulfillment_order(request: HttpRequest) -> Answer:
    return 201, warehouse.fulfillment_order_create(body=json_body(request)).as_dr()


def get_fulfillment_order(request: HttpRequest, fulfillment_order_id: str) -> Answer:
    fulfillment_order = FulfillmentOrder.objects.filter(dr_id=fulfillment_order_id).first()
    if fulfillment_order is None:
        raise not_found("id", fulfillment_order_id)
    return 200, fulfillment_order.as_dr()


def create_cancellation(request: HttpRequest) -> Answer:
    return 201, warehouse.cancellation_create(body=json_body(request)).as_dr()


def list_cancellations(request: HttpRequest) -> Answer:
    """Filtered by `fulfillmentOrderId`, `upstreamIds` and `state`, as DR documents the list."""
    queryset = FulfillmentCancellation.objects.select_related("fulfillment_order").prefetch_related("items")
    fulfillment_order_id = request.GET.get("fulfillmentOrderId")
    if fulfillment_order_id:
        queryset = queryset.filter(fulfillment_order__dr_id=fulfillment_order_id)
    upstream_ids = query_list(request, "upstreamIds")
    if upstream_ids:
        queryset = queryset.filter(upstream_id__in=upstream_ids)
    state = request.GET.get("state")
    if state:
        queryset = queryset.filter(state=state)
    return 200, paginate(request, queryset)


def get_cancellation(request: HttpRequest, cancellation_id: str) -> Answer:
    cancellation = FulfillmentCancellation.objects.filter(dr_id=cancellation_id).first()
    if cancellation is None:
        raise not_found("id", cancellation_id)
    return 200, cancellation.as_dr()


fulfillment_orders = endpoint(get=list_fulfillment_orders, post=create_fulfillment_order)
fulfillment_order = endpoint(get=get_fulfillment_order)
cancellations = endpoint(get=list_cancellations, post=create_cancellation)
cancellation = endpoint(get=get_cancellation)
