"""`POST /api/orders/<dr_order_id>/refunds/`: customer service refunds an amount, a percentage, some
units or the shipping (design.md section 6). 202 with the refund queued for DR; 409 with the reason
when the rules forbid it (nothing captured, more than is available, a dispute); 400 naming the
malformed field. The rules are ``commerce.refunds``'s, the same plan the admin's form confirms.

Mixed into ``desk.api.OrderViewSet``; its own permission (``commerce.refund_order``: the Refunds
role) travels with the action.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commerce.models import Order, Refund
from commerce.refunds import TYPES, InvalidRefund, RefundRefused, refund_execute, refund_plan

from .refund_serializers import RefundSerializer
from .serializers import OrderItemQuantitySerializer, each_item_once

REFUND_PERMISSION = "commerce.refund_order"
ORDER_ID = "231388420336"
REFUND_EXAMPLE = {
    "id": 7,
    "dr_refund_id": "",
    "state": "requested",
    "state_words": "Asked, not yet at DR",
    "kind": "units",
    "kind_words": "Units of some lines",
    "currency": "USD",
    "amount": "21.59",
    "percent": None,
    "refunded_amount": "0.00",
    "reason": "Arrived broken",
    "failure_reason": "",
    "token_expires_at": None,
    "initiated_by_dr": False,
    "for_return": "",
    "retry_of": None,
    "requested_by": "lena",
    "created_at": "2026-11-21T09:30:00Z",
    "lines": [{"item_id": "143040040336", "name": "Managed widget", "quantity": 1, "amount": "21.59"}],
}
REFUSED_EXAMPLE = {"detail": f"Only 12.50 USD of order {ORDER_ID} can still be refunded; you asked 20.00 USD."}
ERROR_DETAIL = inline_serializer("RefundErrorDetail", {"detail": serializers.CharField()})


class RefundInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=500, help_text="Why, in the agent's words (DR gets the first 64 characters)."
    )
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), required=False, help_text='An amount, e.g. "12.50".'
    )
    percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal("100"),
        required=False,
        help_text="A percentage of what is still refundable, 0.01 to 100.",
    )
    items = OrderItemQuantitySerializer(
        many=True, required=False, help_text="Units refunded in full (product and tax)."
    )
    type = serializers.ChoiceField(
        choices=sorted(TYPES), required=False, help_text="The shipping, tax, duty or importer tax, in full."
    )

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return each_item_once(items)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("amount", "percent", "items", "type") if name in attrs]
        if len(given) != 1:
            field = given[-1] if given else "amount"
            raise serializers.ValidationError({field: ['Send exactly one of "amount", "percent", "items" or "type".']})
        return attrs

    def service_arguments(self) -> dict[str, Any]:
        """The validated request as ``refund_plan`` takes it."""
        data = dict(self.validated_data)
        if "items" in data:
            data["items"] = [(item["item_id"], item["quantity"]) for item in data["items"]]
        return data


class RefundNotAllowed(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "refused"


class CanRefund(permissions.BasePermission):
    message = f"Refunding needs the {REFUND_PERMISSION} permission (the Refunds role)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(REFUND_PERMISSION))


class RefundActions:
    """The refund action of the orders API."""

    @extend_schema(
        summary="Refund an amount, a percentage, some units or the shipping",
        description='Send `"reason"` and exactly one of `amount`, `percent`, `items` (those units in full: '
        'product and tax) or `type` (`"shipping"`, `"tax"`, `"duty"`, `"importer_tax"`, in full). The '
        "refund is queued for Digital River and answered 202 as it stands (`requested`); it counts as "
        "refunded only once DR reports it complete: follow it on `GET /api/orders/<id>/` under `refunds`.",
        request=RefundInputSerializer,
        responses={
            202: RefundSerializer,
            400: OpenApiResponse(description="Malformed: the body names the field."),
            409: OpenApiResponse(ERROR_DETAIL, description="The rules forbid it; `detail` says why, with the amounts."),
            401: OpenApiResponse(ERROR_DETAIL, description="No or wrong credentials."),
            403: OpenApiResponse(ERROR_DETAIL, description="Signed in without commerce.refund_order."),
            404: OpenApiResponse(ERROR_DETAIL, description="No such order is mirrored here."),
        },
        examples=[
            OpenApiExample("An amount", value={"reason": "Late delivery", "amount": "12.50"}, request_only=True),
            OpenApiExample("The whole order", value={"reason": "Never arrived", "percent": 100}, request_only=True),
            OpenApiExample(
                "Units",
                value={"reason": "Arrived broken", "items": [{"item_id": "143040040336", "quantity": 1}]},
                request_only=True,
            ),
            OpenApiExample("The shipping", value={"reason": "Late", "type": "shipping"}, request_only=True),
            OpenApiExample("Queued", value=REFUND_EXAMPLE, response_only=True, status_codes=["202"]),
            OpenApiExample("Refused", value=REFUSED_EXAMPLE, response_only=True, status_codes=["409"]),
            OpenApiExample(
                "Malformed",
                value={"amount": ["Ensure that there are no more than 2 decimal places."]},
                response_only=True,
                status_codes=["400"],
            ),
        ],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="refunds",
        url_name="refunds",
        parser_classes=[JSONParser],
        permission_classes=[CanRefund],
    )
    def refund(self, request: Request, dr_order_id: str) -> Response:
        assert request.user.is_authenticated  # CanRefund admits signed-in users only
        order = Order.objects.filter(dr_order_id=dr_order_id).first()
        if order is None:
            raise NotFound(f"No order {dr_order_id} is mirrored here.")
        wanted = RefundInputSerializer(data=request.data, context={"order": order})
        wanted.is_valid(raise_exception=True)
        try:
            plan = refund_plan(order=order, **wanted.service_arguments())
            refund = refund_execute(plan=plan, by=request.user)
        except RefundRefused as exc:
            raise RefundNotAllowed(str(exc)) from exc
        except InvalidRefund as exc:
            raise serializers.ValidationError({exc.field or "non_field_errors": [str(exc)]}) from exc
        refund = Refund.objects.prefetch_related("lines__order_line").select_related("requested_by").get(pk=refund.pk)
        return Response(RefundSerializer(refund).data, status=status.HTTP_202_ACCEPTED)
