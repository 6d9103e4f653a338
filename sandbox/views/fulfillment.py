"""`/fulfillment-orders` and `/fulfillment-cancellations`."""

from ..errors import missing, not_found
from ..models import FulfillmentCancellation, FulfillmentOrder
from ..services import warehouse
from .base import endpoint, json_body, query_list


def list_fulfillment_orders(request):
    """DR answers `data` only here, without `hasMore`."""
    upstream_ids = query_list(request, "upstreamIds")
    ids = query_list(request, "ids")
    if not upstream_ids and not ids:
        raise missing("upstreamIds")
    queryset = FulfillmentOrder.objects.prefetch_related("items").order_by("-pk")
    if upstream_ids:
        queryset = queryset.filter(upstream_id__in=upstream_ids)
    if ids:
        queryset = queryset.filter(dr_id__in=ids)
    return 200, {"data": [fulfillment_order.as_dr() for fulfillment_order in queryset]}


def create_fulfillment_order(request):
    return 201, warehouse.fulfillment_order_create(body=json_body(request)).as_dr()


def get_fulfillment_order(request, fulfillment_order_id):
    fulfillment_order = FulfillmentOrder.objects.filter(dr_id=fulfillment_order_id).first()
    if fulfillment_order is None:
        raise not_found("id", fulfillment_order_id)
    return 200, fulfillment_order.as_dr()


def create_cancellation(request):
    return 201, warehouse.cancellation_create(body=json_body(request)).as_dr()


def get_cancellation(request, cancellation_id):
    cancellation = FulfillmentCancellation.objects.filter(dr_id=cancellation_id).first()
    if cancellation is None:
        raise not_found("id", cancellation_id)
    return 200, cancellation.as_dr()


fulfillment_orders = endpoint(get=list_fulfillment_orders, post=create_fulfillment_order)
fulfillment_order = endpoint(get=get_fulfillment_order)
cancellations = endpoint(post=create_cancellation)
cancellation = endpoint(get=get_cancellation)
