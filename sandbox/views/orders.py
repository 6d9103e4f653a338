"""`/orders`, `/charges`, `/sources`, `/shipments`, `/fulfillments`."""

from typing import TypeVar

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ..errors import Errors, not_found
from ..models import Charge, Fulfillment, Order, Shipment, Source
from ..services.payments import fulfillment_create
from .base import Answer, endpoint, json_body, paginate, query_list

_Found = TypeVar("_Found", Order, Charge, Source, Shipment, Fulfillment)


def _get(model: type[_Found], dr_id: str) -> _Found:
    obj = model.objects.filter(dr_id=dr_id).first()
    if obj is None:
        raise not_found("id", dr_id)
    return obj


def list_orders(request: HttpRequest) -> Answer:
    queryset = Order.objects.prefetch_related("items", "sources", "charges__operations")
    upstream_ids = query_list(request, "upstreamIds")
    if upstream_ids:
        queryset = queryset.filter(upstream_id__in=upstream_ids)
    states = query_list(request, "state")
    if states:
        queryset = queryset.filter(state__in=states)
    if request.GET.get("email"):
        queryset = queryset.filter(email=request.GET["email"])
    return 200, paginate(request, queryset)


def get_order(request: HttpRequest, order_id: str) -> Answer:
    expand = request.GET.get("expand", "").lower() == "true"
    return 200, _get(Order, order_id).as_dr(expand=expand)


def update_order(request: HttpRequest, order_id: str) -> Answer:
    """`POST /orders/{id}`: DR lets only `upstreamId`, `metadata` and `requestToBeForgotten` change."""
    body = json_body(request)
    errors = Errors()
    for key in body:
        if key not in ("upstreamId", "metadata", "requestToBeForgotten"):
            errors.add("unknown_parameter", key, f"'{key}' cannot be updated.")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        errors.invalid("metadata", "'metadata' must be an object.")
    if "upstreamId" in body and not isinstance(body["upstreamId"], str):
        errors.invalid("upstreamId", "'upstreamId' must be a string.")
    errors.raise_if_any()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(dr_id=order_id).first()
        if order is None:
            raise not_found("id", order_id)
        if "upstreamId" in body:
            order.upstream_id = body["upstreamId"]
        if "metadata" in body:
            order.metadata = body["metadata"]
        order.updated_time = timezone.now()
        order.save()
    return 200, order.as_dr()


def get_charge(request: HttpRequest, charge_id: str) -> Answer:
    return 200, _get(Charge, charge_id).as_dr()


def get_source(request: HttpRequest, source_id: str) -> Answer:
    return 200, _get(Source, source_id).as_dr()


def get_shipment(request: HttpRequest, shipment_id: str) -> Answer:
    return 200, _get(Shipment, shipment_id).as_dr()


def list_fulfillments(request: HttpRequest) -> Answer:
    queryset = Fulfillment.objects.select_related("order")
    order_id = request.GET.get("orderId")
    if order_id:
        queryset = queryset.filter(order__dr_id=order_id)
    return 200, paginate(request, queryset)


def create_fulfillment(request: HttpRequest) -> Answer:
    return 201, fulfillment_create(body=json_body(request)).as_dr()


def get_fulfillment(request: HttpRequest, fulfillment_id: str) -> Answer:
    return 200, _get(Fulfillment, fulfillment_id).as_dr()


orders = endpoint(get=list_orders)
order = endpoint(get=get_order, post=update_order)
charge = endpoint(get=get_charge)
source = endpoint(get=get_source)
shipment = endpoint(get=get_shipment)
fulfillments = endpoint(get=list_fulfillments, post=create_fulfillment)
fulfillment = endpoint(get=get_fulfillment)
