"""REST endpoints for customer service actions on an order under /api/ (design.md section 6).

`POST /api/orders/<dr_order_id>/cancellations/` and `/shipments/` answer 202 once the work is queued
(DR is asked by the outbox), 409 when the rules forbid it, with the services' own readable reason,
and 400 for malformed input. Views are thin: `order_cancel` and `shipment_record` are the same
services the admin's forms use.
"""

from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.urls import path
from django_fsm_log.models import StateLog
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.models import Order

from .cancellations import CancellationRefused, InvalidCancellation, order_cancel
from .models import CancellationRequest, Shipment
from .serializers import (
    CancellationInputSerializer,
    OrderCancellationsSerializer,
    RecordedShipmentSerializer,
    ShipmentInputSerializer,
)
from .services import ShipmentRefused, shipment_record

ORDER_ID = "231388420336"
CANCEL_SOME_EXAMPLE = {"items": [{"item_id": "164470560336", "quantity": 1}], "reason": "The customer changed her mind"}
CANCEL_ALL_EXAMPLE = {"all": True, "reason": "Duplicate order"}
CANCELLATION_EXAMPLE = {
    "id": 17,
    "route": "fulfillment_cancellation",
    "state": "requested",
    "reason": "The customer changed her mind",
    "fulfillment_order_id": "fo_8f2c",
    "dr_cancellation_id": "",
    "requested_by": "ada.cs",
    "created_at": "2026-11-21T09:00:00Z",
    "updated_at": "2026-11-21T09:00:00Z",
    "lines": [
        {
            "item_id": "164470560336",
            "sku_id": "dist-1",
            "name": "Distributed widget",
            "quantity": 1,
            "quantity_accepted": None,
            "quantity_released": 0,
        }
    ],
    "progress": [{"state": "requested", "at": "2026-11-21T09:00:00Z", "description": "The customer changed her mind"}],
}
QUEUED_EXAMPLE = {"dr_order_id": ORDER_ID, "requests": [CANCELLATION_EXAMPLE]}
FOLLOWED_EXAMPLE = {
    "dr_order_id": ORDER_ID,
    "requests": [
        {
            **CANCELLATION_EXAMPLE,
            "state": "released",
            "dr_cancellation_id": "fc_3a9d",
            "updated_at": "2026-11-21T09:20:00Z",
            "lines": [{**CANCELLATION_EXAMPLE["lines"][0], "quantity_accepted": 1, "quantity_released": 1}],
            "progress": [
                *CANCELLATION_EXAMPLE["progress"],
                {"state": "submitted", "at": "2026-11-21T09:00:01Z", "description": "DR has the request"},
                {
                    "state": "accepted",
                    "at": "2026-11-21T09:15:00Z",
                    "description": "the warehouse accepted 1 of 1 unit(s)",
                },
                {"state": "released", "at": "2026-11-21T09:20:00Z", "description": "payment released"},
            ],
        }
    ],
}
CANCEL_REFUSED_EXAMPLE = {
    "detail": "Cannot cancel that many units. Distributed widget: asked for 2, 1 of 2 can be cancelled; "
    "1 shipped (a return is needed for those)."
}
CANCEL_MALFORMED_EXAMPLE = {"items": {"0": {"quantity": ["Ensure this value is greater than or equal to 1."]}}}
SHIPMENT_EXAMPLE = {
    "items": [{"item_id": "164470560337", "quantity": 1}],
    "tracking_company": "DHL",
    "tracking_number": "JD014600006281230701",
    "tracking_url": "https://www.dhl.com/track?id=JD014600006281230701",
}
SHIPMENT_RECORDED_EXAMPLE = {
    "id": 42,
    **{key: value for key, value in SHIPMENT_EXAMPLE.items() if key != "items"},
    "shipped_at": "2026-11-21T09:00:00Z",
    "items": SHIPMENT_EXAMPLE["items"],
    "capture": "queued",
}
SHIPMENT_REFUSED_EXAMPLE = {
    "detail": "Cannot record this shipment: Distributed widget is fulfilled through DR (distributed)."
}
SHIPMENT_MALFORMED_EXAMPLE = {"tracking_url": ["Enter a valid URL."]}
ERROR_DETAIL = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})
VALIDATION_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Malformed: the body maps each field to what is wrong with it; an item's errors "
    "are under its position in the list, e.g. items.0.quantity.",
)
COMMON_ANSWERS = {
    401: OpenApiResponse(ERROR_DETAIL, description="No or wrong credentials (token or session)."),
    403: OpenApiResponse(ERROR_DETAIL, description="Signed in without the permission this needs."),
    404: OpenApiResponse(ERROR_DETAIL, description="No such order is mirrored here."),
}


class Refused(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "refused"


class HasPermission(permissions.BasePermission):
    """Signed in with one Django permission; subclasses name it and say so when it is missing."""

    permission = ""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(self.permission))


class CanViewOrders(HasPermission):
    permission = "commerce.view_order"
    message = "Reading orders needs the commerce.view_order permission."


class CanCancelOrderLines(HasPermission):
    permission = "commerce.cancel_order_lines"
    message = "Cancelling order lines needs the commerce.cancel_order_lines permission."


class CanRecordShipments(HasPermission):
    permission = "commerce.record_shipment"
    message = "Recording shipments needs the commerce.record_shipment permission."


def _order(dr_order_id: str) -> Order:
    order = Order.objects.filter(dr_order_id=dr_order_id).first()
    if order is None:
        raise NotFound(f"No order {dr_order_id} is mirrored here.")
    return order


def _cancellations(order: Order, requests: QuerySet[CancellationRequest]) -> dict:
    requests = list(
        requests.select_related("fulfillment_order", "requested_by")
        .prefetch_related("lines__order_line")
        .order_by("-created_at", "-id")
    )
    state_changes = defaultdict(list)
    logged = StateLog.objects.filter(
        content_type=ContentType.objects.get_for_model(CancellationRequest),
        object_id__in=[cancellation.pk for cancellation in requests],
    )
    for change in logged.order_by("timestamp", "pk"):
        state_changes[change.object_id].append(change)
    body = {"dr_order_id": order.dr_order_id, "requests": requests}
    return OrderCancellationsSerializer(body, context={"state_changes": state_changes}).data


class OrderCancellationsView(APIView):
    parser_classes = [JSONParser]  # items are a nested list, which form encodings cannot carry

    def get_permissions(self):
        if self.request.method in permissions.SAFE_METHODS:
            return [CanViewOrders()]
        return [CanCancelOrderLines()]

    @extend_schema(
        summary="The order's cancellation requests and how far each has come",
        responses={200: OrderCancellationsSerializer, **COMMON_ANSWERS},
        examples=[OpenApiExample("Released", value=FOLLOWED_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def get(self, request, dr_order_id):
        order = _order(dr_order_id)
        return Response(_cancellations(order, order.cancellation_requests.all()))

    @extend_schema(
        summary="Cancel some units of some lines, or the whole order",
        description="Queues what DR needs for each line's fulfillment model and the order's state: a "
        "cancellation request to the fulfiller (DR-coordinated lines of an accepted order) or a direct "
        "release of the payment. The answer shows each request as it stands then (usually still "
        "requested); follow them with GET on the same path. Shipped units cannot be cancelled: they need a return.",
        request=CancellationInputSerializer,
        responses={
            202: OrderCancellationsSerializer,
            400: VALIDATION_ERRORS,
            409: OpenApiResponse(ERROR_DETAIL, description="The rules forbid it; `detail` says why, with counts."),
            **COMMON_ANSWERS,
        },
        examples=[
            OpenApiExample("Some units", value=CANCEL_SOME_EXAMPLE, request_only=True),
            OpenApiExample("The whole order", value=CANCEL_ALL_EXAMPLE, request_only=True),
            OpenApiExample("Queued", value=QUEUED_EXAMPLE, response_only=True, status_codes=["202"]),
            OpenApiExample("Refused", value=CANCEL_REFUSED_EXAMPLE, response_only=True, status_codes=["409"]),
            OpenApiExample("Malformed", value=CANCEL_MALFORMED_EXAMPLE, response_only=True, status_codes=["400"]),
        ],
    )
    def post(self, request, dr_order_id):
        order = _order(dr_order_id)
        wanted = CancellationInputSerializer(data=request.data, context={"order": order})
        wanted.is_valid(raise_exception=True)
        try:
            requests = order_cancel(order=order, by=request.user, **wanted.service_arguments())
        except CancellationRefused as exc:
            raise Refused(str(exc)) from exc
        except InvalidCancellation as exc:  # the serializer checks the same; the service has the last word
            raise serializers.ValidationError({"items": [str(exc)]}) from exc
        queued = CancellationRequest.objects.filter(pk__in=[cancellation.pk for cancellation in requests])
        return Response(_cancellations(order, queued), status=status.HTTP_202_ACCEPTED)


class OrderShipmentsView(APIView):
    permission_classes = [CanRecordShipments]
    parser_classes = [JSONParser]  # items are a nested list, which form encodings cannot carry

    @extend_schema(
        summary="Record a shipment of third-party or digital lines and queue the capture of their payment",
        description="Our logistics partner shipped (or a download was delivered): DR is asked to capture "
        "these units with the tracking. Lines DR coordinates (distributed, orchestrated) are shipped "
        "through DR and refused here.",
        request=ShipmentInputSerializer,
        responses={
            202: RecordedShipmentSerializer,
            400: VALIDATION_ERRORS,
            409: OpenApiResponse(ERROR_DETAIL, description="The rules forbid it; `detail` says why, with counts."),
            **COMMON_ANSWERS,
        },
        examples=[
            OpenApiExample("Shipped with tracking", value=SHIPMENT_EXAMPLE, request_only=True),
            OpenApiExample(
                "A download delivered",
                value={"items": [{"item_id": "164470560338", "quantity": 1}]},
                request_only=True,
            ),
            OpenApiExample("Recorded", value=SHIPMENT_RECORDED_EXAMPLE, response_only=True, status_codes=["202"]),
            OpenApiExample("Refused", value=SHIPMENT_REFUSED_EXAMPLE, response_only=True, status_codes=["409"]),
            OpenApiExample("Malformed", value=SHIPMENT_MALFORMED_EXAMPLE, response_only=True, status_codes=["400"]),
        ],
    )
    def post(self, request, dr_order_id):
        order = _order(dr_order_id)
        shipped = ShipmentInputSerializer(data=request.data, context={"order": order})
        shipped.is_valid(raise_exception=True)
        try:
            shipment = shipment_record(order=order, by=request.user, **shipped.service_arguments())
        except ShipmentRefused as exc:
            raise Refused(str(exc)) from exc
        shipment = Shipment.objects.prefetch_related("items__order_line").get(pk=shipment.pk)
        return Response(RecordedShipmentSerializer(shipment).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("orders/<str:dr_order_id>/cancellations/", OrderCancellationsView.as_view(), name="order-cancellations"),
    path("orders/<str:dr_order_id>/shipments/", OrderShipmentsView.as_view(), name="order-shipments"),
]
