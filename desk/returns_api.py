"""`POST /api/orders/<dr_order_id>/returns/` and `…/returns/<return_id>/received/` (design.md
section 6): customer service starts a return, or records a third-party return received. Both go
through the same plans the admin's forms confirm (fulfillment.returns); 202 once queued, 409 with the
rules' reason (counts and line names), 400 naming the malformed field. Mixed into OrderViewSet."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.models import Order
from fulfillment.models import Return
from fulfillment.returns import (
    REASON_LIMIT,
    InvalidReturn,
    ReturnRefused,
    return_execute,
    return_plan,
    return_received_execute,
    return_received_plan,
)

from .serializers import OrderItemQuantitySerializer, ReturnSerializer, each_item_once

START_RETURN_PERMISSION = "commerce.start_return"

RETURN_EXAMPLE = {"items": [{"item_id": "143040030336", "quantity": 1}], "reason": "Too small"}
RETURN_QUEUED_EXAMPLE = {
    "dr_order_id": "231388420336",
    "returns": [
        {
            "id": 12,
            "api": "fulfillment_returns",
            "type": "client",
            "state": "requested",
            "state_label": "Asked, not yet at DR",
            "dr_return_id": "",
            "fulfillment_order_id": "700412580336",
            "reason": "Too small",
            "location": {},
            "failure_reason": "",
            "created_at": "2026-11-22T09:00:00Z",
            "updated_at": "2026-11-22T09:00:00Z",
            "lines": [
                {"item_id": "143040030336", "name": "Widget", "quantity": 1, "quantity_accepted": 0, "state": ""}
            ],
        }
    ],
}
RETURN_REFUSED_EXAMPLE = {
    "detail": "Cannot return that many units. Widget: asked for 2, 1 of 2 can be returned now: nothing has shipped yet."
}
RECEIPT_EXAMPLE = {"items": [{"item_id": "164470560336", "quantity": 1}]}
RECEIPT_QUEUED_EXAMPLE = {
    "return_id": 13,
    "received": [{"item_id": "164470560336", "quantity": 1}],
    "completes_the_return": False,
    "what_happens": [
        "Record 1 unit of Partner gadget as received back; 2 units still to come back; a partial receipt "
        "never refunds by itself: DR refunds the return only when every unit is received"
    ],
}

ERROR_DETAIL = inline_serializer("ReturnErrorDetail", {"detail": serializers.CharField()})
ANSWERS = {
    400: OpenApiResponse(description="Malformed: the body maps each field to what is wrong with it."),
    403: OpenApiResponse(ERROR_DETAIL, description="Signed in without commerce.start_return."),
    404: OpenApiResponse(ERROR_DETAIL, description="No such order (or return of it) is mirrored here."),
    409: OpenApiResponse(ERROR_DETAIL, description="The rules forbid it; `detail` says why, with counts."),
}


class ReturnRefusedError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "refused"


class CanStartReturns(BasePermission):
    message = "Starting a return or recording one received needs the commerce.start_return permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(START_RETURN_PERMISSION))


class ReturnInputSerializer(serializers.Serializer):
    items = OrderItemQuantitySerializer(many=True, help_text="The units coming back.")
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=REASON_LIMIT,
        help_text="Why, in the customer's words; sent to DR.",
    )

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return each_item_once(items)


class ReceiptInputSerializer(serializers.Serializer):
    items = OrderItemQuantitySerializer(
        many=True, required=False, help_text="The units of this parcel; all units still expected when omitted."
    )

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return each_item_once(items)


class OrderReturnsSerializer(serializers.Serializer):
    dr_order_id = serializers.CharField(read_only=True)
    returns = ReturnSerializer(many=True, read_only=True)


class ReceiptSerializer(serializers.Serializer):
    return_id = serializers.IntegerField(read_only=True)
    received = OrderItemQuantitySerializer(many=True, read_only=True)
    completes_the_return = serializers.BooleanField(
        read_only=True, help_text="True: every unit is back, and DR refunds the return by itself."
    )
    what_happens = serializers.ListField(child=serializers.CharField(), read_only=True)


def _order(dr_order_id: str) -> Order:
    order = Order.objects.filter(dr_order_id=dr_order_id).first()
    if order is None:
        raise NotFound(f"No order {dr_order_id} is mirrored here.")
    return order


RETURN_ACTION_PERMISSIONS: dict[str, type[BasePermission]] = {
    "start_return": CanStartReturns,
    "return_received": CanStartReturns,
}


class ReturnActions:
    """The two actions, mixed into desk.api.OrderViewSet (whose ACTION_PERMISSIONS names them)."""

    @extend_schema(
        summary="Start a return of shipped units",
        description="Lines DR coordinates (distributed, orchestrated) become one `POST /fulfillment-returns` "
        "per fulfillment order: DR's warehouse approves and emails nothing itself; we email the customer "
        "the return address once it does, and the refund follows once the warehouse has the goods. "
        "Third-party and digital lines become one `POST /returns`; record them received with "
        "`…/returns/<id>/received/`. 409 for units not shipped, already returned or in an open return, "
        "or an order in dispute; nothing is asked of DR then.",
        request=ReturnInputSerializer,
        responses={202: OrderReturnsSerializer, **ANSWERS},
        examples=[
            OpenApiExample("One unit", value=RETURN_EXAMPLE, request_only=True),
            OpenApiExample("Queued", value=RETURN_QUEUED_EXAMPLE, response_only=True, status_codes=["202"]),
            OpenApiExample("Refused", value=RETURN_REFUSED_EXAMPLE, response_only=True, status_codes=["409"]),
        ],
    )
    @action(detail=True, methods=["post"], url_path="returns", url_name="returns", parser_classes=[JSONParser])
    def start_return(self, request: Request, dr_order_id: str) -> Response:
        order = _order(dr_order_id)
        wanted = ReturnInputSerializer(data=request.data, context={"order": order})
        wanted.is_valid(raise_exception=True)
        items = [(item["item_id"], item["quantity"]) for item in wanted.validated_data["items"]]
        by = request.user if request.user.is_authenticated else None
        try:
            plan = return_plan(order=order, items=items, reason=wanted.validated_data["reason"])
            returns = return_execute(plan=plan, by=by)
        except ReturnRefused as exc:
            raise ReturnRefusedError(str(exc)) from exc
        except InvalidReturn as exc:
            raise serializers.ValidationError({"items": [str(exc)]}) from exc
        queued = Return.objects.filter(pk__in=[ret.pk for ret in returns]).prefetch_related("lines__order_line")
        body = {"dr_order_id": order.dr_order_id, "returns": queued.select_related("fulfillment_order")}
        return Response(OrderReturnsSerializer(body).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Record a third-party return as received (all units, or one parcel)",
        description="Tells DR (`POST /returns/{id}`) that our partner has the goods back. DR refunds the "
        "return by itself only once every unit is received: a partial receipt never refunds by itself. "
        "409 for a return through DR's warehouse (it reports receipt), one not yet at DR, or more units "
        "than the return still expects.",
        request=ReceiptInputSerializer,
        responses={202: ReceiptSerializer, **ANSWERS},
        examples=[
            OpenApiExample("One parcel", value=RECEIPT_EXAMPLE, request_only=True),
            OpenApiExample("Every unit", value={}, request_only=True),
            OpenApiExample("Queued", value=RECEIPT_QUEUED_EXAMPLE, response_only=True, status_codes=["202"]),
        ],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"returns/(?P<return_id>[0-9]+)/received",
        url_name="return-received",
        parser_classes=[JSONParser],
    )
    def return_received(self, request: Request, dr_order_id: str, return_id: str) -> Response:
        order = _order(dr_order_id)
        ret = Return.objects.filter(order=order, pk=int(return_id)).first()
        if ret is None:
            raise NotFound(f"Order {dr_order_id} has no return {return_id}.")
        received = ReceiptInputSerializer(data=request.data, context={"order": order})
        received.is_valid(raise_exception=True)
        items = received.validated_data.get("items")
        by = request.user if request.user.is_authenticated else None
        try:
            plan = return_received_plan(
                ret=ret, items=None if items is None else [(item["item_id"], item["quantity"]) for item in items]
            )
            return_received_execute(plan=plan, by=by)
        except ReturnRefused as exc:
            raise ReturnRefusedError(str(exc)) from exc
        except InvalidReturn as exc:
            raise serializers.ValidationError({"items": [str(exc)]}) from exc
        body = {
            "return_id": ret.pk,
            "received": [{"item_id": line.order_line.dr_item_id, "quantity": units} for line, units in plan.received],
            "completes_the_return": plan.completes,
            "what_happens": [step.what for step in plan.steps],
        }
        return Response(ReceiptSerializer(body).data, status=status.HTTP_202_ACCEPTED)
