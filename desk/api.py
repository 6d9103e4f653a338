"""`/api/orders/…` (the README's REST API table): the order mirror as JSON, a way to re-fetch one from DR,
and customer service's actions on it.

`POST /api/orders/<dr_order_id>/cancellations/` and `/shipments/` answer 202 once the work is queued
(DR is asked by the outbox), 409 when the rules forbid it, with the services' own readable reason,
and 400 for malformed input. Views are thin: reads go through `desk.selectors`, the refresh through
`commerce.services.order_fetch`, and the actions through the same plans the admin's forms confirm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http.response import HttpResponseBase
from django_fsm_log.models import StateLog
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from commerce import services
from commerce.models import Order
from digitalriver.errors import DigitalRiverError
from digitalriver.errors import NotFound as DrNotFound
from fulfillment.cancellations import (
    CancellationRefused,
    InvalidCancellation,
    cancellation_execute,
    cancellation_plan,
)
from fulfillment.models import CancellationRequest, Shipment
from fulfillment.shipments import ShipmentRefused, shipment_execute, shipment_plan

from . import documents, selectors
from .api_examples import (
    CANCEL_ALL_EXAMPLE,
    CANCEL_MALFORMED_EXAMPLE,
    CANCEL_REFUSED_EXAMPLE,
    CANCEL_SOME_EXAMPLE,
    DR_FAILED_EXAMPLE,
    FOLLOWED_EXAMPLE,
    ORDER_DETAIL_EXAMPLE,
    ORDER_SUMMARY_EXAMPLE,
    QUEUED_EXAMPLE,
    SHIPMENT_EXAMPLE,
    SHIPMENT_MALFORMED_EXAMPLE,
    SHIPMENT_RECORDED_EXAMPLE,
    SHIPMENT_REFUSED_EXAMPLE,
)
from .permissions import REFRESH_ORDER_PERMISSIONS, can_refresh_order
from .refund_api import RefundActions
from .returns_api import RETURN_ACTION_PERMISSIONS, ReturnActions
from .serializers import (
    CancellationInputSerializer,
    OrderCancellationsSerializer,
    OrderDetailSerializer,
    OrderSummarySerializer,
    RecordedShipmentSerializer,
    ShipmentInputSerializer,
)

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission

FILTERS = [
    OpenApiParameter("state", OpenApiTypes.STR, enum=Order.State.values, description="Only orders in this state."),
    OpenApiParameter("upstream_id", OpenApiTypes.STR, description="Only the order with this upstream (shop) id."),
    OpenApiParameter("email", OpenApiTypes.STR, description="Only the customer's orders (case does not matter)."),
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description="What an agent types, as in the admin's order search: part of the DR order id, upstream id, "
        "email or name; a SKU; or part of a tracking number. Several words must each match.",
    ),
]


class OrderPermissions(permissions.DjangoModelPermissions):
    """Reading needs commerce.view_order. Each POST action has its own rule (ACTION_PERMISSIONS); a POST
    without one would need commerce.change_order (not add_order, as a POST would by default)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.change_%(model_name)s"],
    }


def _order_detail(dr_order_id: str) -> Order:
    order = selectors.order_detail_get(dr_order_id=dr_order_id)
    if order is None:
        raise NotFound(f"No order {dr_order_id} is mirrored here.")
    return order


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


# What customer service's actions answer besides 202.
ACTION_ANSWERS = {
    400: VALIDATION_ERRORS,
    409: OpenApiResponse(ERROR_DETAIL, description="The rules forbid it; `detail` says why, with counts."),
    **COMMON_ANSWERS,
}


class Refused(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "refused"


class HasPermission(permissions.BasePermission):
    """Signed in with one Django permission; subclasses name it and say so when it is missing."""

    permission = ""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(self.permission))


class CanViewOrders(HasPermission):
    permission = "commerce.view_order"
    message = "Reading orders needs the commerce.view_order permission."


class CanRefreshOrders(permissions.BasePermission):
    """The admin's "Refresh from DR" follows the same rule (desk.permissions)."""

    message = f"Refreshing an order from Digital River needs the {' and '.join(REFRESH_ORDER_PERMISSIONS)} permissions."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_refresh_order(request.user)


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


def _cancellations(order: Order, requests: QuerySet[CancellationRequest]) -> dict[str, Any]:
    shown = list(
        requests.select_related("fulfillment_order", "requested_by")
        .prefetch_related("lines__order_line")
        .order_by("-created_at", "-id")
    )
    state_changes = defaultdict(list)
    logged = StateLog.objects.filter(
        content_type=ContentType.objects.get_for_model(CancellationRequest),
        object_id__in=[cancellation.pk for cancellation in shown],
    )
    for change in logged.order_by("timestamp", "pk"):
        state_changes[change.object_id].append(change)
    body = {"dr_order_id": order.dr_order_id, "requests": shown}
    return OrderCancellationsSerializer(body, context={"state_changes": state_changes}).data


@extend_schema_view(
    list=extend_schema(
        summary="List orders, newest first",
        description="Filter by state, upstream id and email, or search with `q`; paginated with `page`.",
        parameters=FILTERS,
        examples=[OpenApiExample("An accepted order", value=ORDER_SUMMARY_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="One order with its lines, fulfillment orders, shipments, charges and flags",
        description="Every line carries our counters (pending … cancelled), which DR does not keep per item.",
        examples=[OpenApiExample("A shipped and captured order", value=ORDER_DETAIL_EXAMPLE, response_only=True)],
    ),
)
class OrderViewSet(RefundActions, ReturnActions, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [OrderPermissions]
    lookup_field = "dr_order_id"
    lookup_value_regex = r"[0-9A-Za-z_-]+"
    # DjangoModelPermissions reads the model from here; each action reads through a selector.
    queryset = Order.objects.none()

    # Customer service's actions need their own permission, each named when it is missing.
    ACTION_PERMISSIONS: dict[str, type[permissions.BasePermission]] = {
        "refresh": CanRefreshOrders,
        "cancellations": CanViewOrders,
        "cancel": CanCancelOrderLines,
        "record_shipment": CanRecordShipments,
        **RETURN_ACTION_PERMISSIONS,
        "document": CanViewOrders,
    }

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        permission = self.ACTION_PERMISSIONS.get(self.action)
        return [permission()] if permission else super().get_permissions()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        # A download may be asked for as application/pdf: its errors are still answered as JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "document")

    def get_serializer_class(self) -> type[BaseSerializer[Order]]:
        return OrderSummarySerializer if self.action == "list" else OrderDetailSerializer

    def get_queryset(self) -> QuerySet[Order]:
        params = self.request.query_params
        state = params.get("state")
        if state and state not in Order.State.values:
            raise serializers.ValidationError({"state": [f"'{state}' is not one of {', '.join(Order.State.values)}."]})
        return selectors.orders_list(
            state=state, upstream_id=params.get("upstream_id"), email=params.get("email"), q=params.get("q")
        )

    def retrieve(self, request: Request, dr_order_id: str) -> Response:
        return Response(self.get_serializer(_order_detail(dr_order_id)).data)

    @extend_schema(
        summary="Fetch the order from Digital River again and mirror it",
        description="Also imports an order DR has and we have not seen yet.",
        request=None,
        responses={
            200: OrderDetailSerializer,
            404: OpenApiResponse(description="Digital River has no such order."),
            502: OpenApiResponse(description="Digital River could not be asked; `detail` says why."),
        },
        examples=[
            OpenApiExample("Refreshed", value=ORDER_DETAIL_EXAMPLE, response_only=True, status_codes=["200"]),
            OpenApiExample("DR failed", value=DR_FAILED_EXAMPLE, response_only=True, status_codes=["502"]),
        ],
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, dr_order_id: str) -> Response:
        try:
            services.order_fetch(dr_order_id=dr_order_id)
        except DrNotFound as exc:
            raise NotFound(f"Digital River has no order {dr_order_id}.") from exc
        except DigitalRiverError as exc:
            return Response({"detail": f"Digital River could not be asked: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(OrderDetailSerializer(_order_detail(dr_order_id)).data)

    @extend_schema(
        summary="The order's cancellation requests and how far each has come",
        responses={200: OrderCancellationsSerializer, **COMMON_ANSWERS},
        examples=[OpenApiExample("Released", value=FOLLOWED_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    # Items are a nested list, which form encodings cannot carry: JSON only (for the POST mapped below too).
    @action(detail=True, methods=["get"], parser_classes=[JSONParser])
    def cancellations(self, request: Request, dr_order_id: str) -> Response:
        order = _order(dr_order_id)
        return Response(_cancellations(order, order.cancellation_requests.all()))

    @extend_schema(
        summary="Cancel some units of some lines, or the whole order",
        description="Queues what DR needs for each line's fulfillment model and the order's state: a "
        "cancellation request to the fulfiller (DR-coordinated lines of an accepted order) or a direct "
        "release of the payment. The answer shows each request as it stands then (usually still "
        "requested); follow them with GET on the same path. Shipped units cannot be cancelled: they need a return.",
        request=CancellationInputSerializer,
        responses={202: OrderCancellationsSerializer, **ACTION_ANSWERS},
        examples=[
            OpenApiExample("Some units", value=CANCEL_SOME_EXAMPLE, request_only=True),
            OpenApiExample("The whole order", value=CANCEL_ALL_EXAMPLE, request_only=True),
            OpenApiExample("Queued", value=QUEUED_EXAMPLE, response_only=True, status_codes=["202"]),
            OpenApiExample("Refused", value=CANCEL_REFUSED_EXAMPLE, response_only=True, status_codes=["409"]),
            OpenApiExample("Malformed", value=CANCEL_MALFORMED_EXAMPLE, response_only=True, status_codes=["400"]),
        ],
    )
    @cancellations.mapping.post
    def cancel(self, request: Request, dr_order_id: str) -> Response:
        assert request.user.is_authenticated  # CanCancelOrderLines admits signed-in users only
        order = _order(dr_order_id)
        wanted = CancellationInputSerializer(data=request.data, context={"order": order})
        wanted.is_valid(raise_exception=True)
        try:
            plan = cancellation_plan(order=order, **wanted.service_arguments())
            requests = cancellation_execute(plan=plan, by=request.user)
        except CancellationRefused as exc:  # the plan's refusal, or the order changed under the lock
            raise Refused(str(exc)) from exc
        except InvalidCancellation as exc:  # the serializer checks the same; the service has the last word
            raise serializers.ValidationError({"items": [str(exc)]}) from exc
        queued = CancellationRequest.objects.filter(pk__in=[cancellation.pk for cancellation in requests])
        return Response(_cancellations(order, queued), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Record a shipment of third-party or digital lines and queue the capture of their payment",
        description="Our logistics partner shipped (or a download was delivered): DR is asked to capture "
        "these units with the tracking. Lines DR coordinates (distributed, orchestrated) are shipped "
        "through DR and refused here.",
        request=ShipmentInputSerializer,
        responses={202: RecordedShipmentSerializer, **ACTION_ANSWERS},
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
    @action(detail=True, methods=["post"], url_path="shipments", url_name="shipments", parser_classes=[JSONParser])
    def record_shipment(self, request: Request, dr_order_id: str) -> Response:
        assert request.user.is_authenticated  # CanRecordShipments admits signed-in users only
        order = _order(dr_order_id)
        shipped = ShipmentInputSerializer(data=request.data, context={"order": order})
        shipped.is_valid(raise_exception=True)
        try:
            plan = shipment_plan(order=order, **shipped.service_arguments())
            shipment = shipment_execute(plan=plan, by=request.user)
        except ShipmentRefused as exc:
            raise Refused(str(exc)) from exc
        shipment = Shipment.objects.prefetch_related("items__order_line").get(pk=shipment.pk)
        return Response(RecordedShipmentSerializer(shipment).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(**documents.DOWNLOAD_SCHEMA)
    @action(detail=True, methods=["get"], url_path=r"documents/(?P<file_id>[^/]+)", url_name="document")
    def document(self, request: Request, dr_order_id: str, file_id: str) -> HttpResponseBase:
        return documents.api_download(order=_order(dr_order_id), file_id=file_id)
