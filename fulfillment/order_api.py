"""`/api/orders/…` (design.md section 6): the order mirror as JSON, and a way to re-fetch one from DR.

Views are thin: reads go through `order_queries`, the refresh through `services.order_fetch`, the
same service the webhook handlers and `import_order` use.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from commerce import services
from commerce.models import Order
from digitalriver.errors import DigitalRiverError
from digitalriver.errors import NotFound as DrNotFound

from . import order_queries as api_selectors
from .order_serializers import OrderDetailSerializer, OrderSummarySerializer

FLAGS_EXAMPLE = {
    "capture_failed": False,
    "cancellation_rejected": False,
    "backordered": False,
    "unknown_sku": False,
    "needs_attention": False,
}
ORDER_SUMMARY_EXAMPLE = {
    "dr_order_id": "231388420336",
    "upstream_id": "WEB-10001",
    "state": "accepted",
    "state_changed_at": "2026-11-20T10:00:05Z",
    "fraud_state": "passed",
    "email": "ada@example.com",
    "customer_name": "Ada Lovelace",
    "currency": "USD",
    "total_amount": "70.17",
    "dr_created_at": "2026-11-20T10:00:00Z",
    "dr_updated_at": "2026-11-20T10:00:05Z",
    "flags": FLAGS_EXAMPLE,
}
ORDER_DETAIL_EXAMPLE = {
    **ORDER_SUMMARY_EXAMPLE,
    "state": "fulfilled",
    "checkout_id": "chk_5d1b0f",
    "locale": "en_US",
    "ship_to": {"name": "Ada Lovelace", "address": {"line1": "1 Main St", "city": "Minneapolis", "country": "US"}},
    "bill_to": {"name": "Ada Lovelace"},
    "shipping_choice": {"id": "SG", "amount": 5.0, "serviceLevel": "SG", "shippingTerms": "DDP"},
    "subtotal": "59.97",
    "total_tax": "5.20",
    "total_shipping": "5.00",
    "captured_amount": "70.17",
    "cancelled_amount": "0.00",
    "refunded_amount": "0.00",
    "available_to_refund_amount": "70.17",
    "fetched_at": "2026-11-20T12:00:01Z",
    "lines": [
        {
            "dr_item_id": "164470560336",
            "dr_sku_id": "dist-1",
            "name": "Distributed widget",
            "fulfillment_model": "distributed",
            "dr_state": "fulfilled",
            "quantity": 3,
            "amount": "59.97",
            "tax_amount": "4.80",
            "tax_rate": "0.08000",
            "pending": 0,
            "backordered": 0,
            "shipped": 3,
            "fulfilled": 3,
            "cancel_requested": 0,
            "cancelled": 0,
            "open_quantity": 0,
        }
    ],
    "fulfillment_orders": [
        {
            "dr_fulfillment_order_id": "fo_8f2c",
            "state": "shipped",
            "created_by_us": True,
            "dr_updated_at": "2026-11-20T11:30:00Z",
            "lines": [
                {
                    "dr_item_id": "foi_1",
                    "order_item_id": "164470560336",
                    "inventory_item_id": "dist-1",
                    "state": "shipped",
                    "quantity": 3,
                    "pending": 0,
                    "backordered": 0,
                    "shipped": 3,
                    "cancelled": 0,
                    "returned": 0,
                    "cancel_instructed": 0,
                    "available_time": None,
                }
            ],
        }
    ],
    "shipments": [
        {
            "dr_shipment_id": "shp_41",
            "source": "dr",
            "fulfillment_order_id": "fo_8f2c",
            "tracking_company": "UPS",
            "tracking_number": "1Z999AA10123456784",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
            "shipped_at": "2026-11-20T11:30:00Z",
            "items": [{"dr_shipment_item_id": "shpi_1", "order_item_id": "164470560336", "quantity": 3}],
        }
    ],
    "charges": [
        {
            "dr_charge_id": "ch_77",
            "amount": "70.17",
            "currency": "USD",
            "state": "complete",
            "captured": True,
            "refunded": False,
            "dr_updated_at": "2026-11-20T11:30:02Z",
            "captures": [
                {
                    "dr_id": "cap_1",
                    "amount": "70.17",
                    "state": "complete",
                    "failure_code": "",
                    "failure_message": "",
                    "fulfillment_id": "ful_9",
                    "dr_created_at": "2026-11-20T11:30:02Z",
                }
            ],
            "cancels": [],
            "refunds": [],
        }
    ],
}
DR_FAILED_EXAMPLE = {
    "detail": "Digital River could not be asked: GET /orders/231388420336: 503 service_unavailable",
}

FILTERS = [
    OpenApiParameter("state", OpenApiTypes.STR, enum=Order.State.values, description="Only orders in this state."),
    OpenApiParameter("upstream_id", OpenApiTypes.STR, description="Only the order with this upstream (shop) id."),
    OpenApiParameter("email", OpenApiTypes.STR, description="Only the customer's orders (case does not matter)."),
]


class OrderPermissions(permissions.DjangoModelPermissions):
    """Reading needs commerce.view_order. The only write here is the refresh, which changes the mirror:
    it needs commerce.change_order (not add_order, as a POST would by default)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.change_%(model_name)s"],
    }


@extend_schema_view(
    list=extend_schema(
        summary="List orders, newest first",
        description="Filter by state, upstream id and email; paginated with `page`.",
        parameters=FILTERS,
        examples=[OpenApiExample("An accepted order", value=ORDER_SUMMARY_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="One order with its lines, fulfillment orders, shipments, charges and flags",
        description="Every line carries our counters (pending … cancelled), which DR does not keep per item.",
        examples=[OpenApiExample("A shipped and captured order", value=ORDER_DETAIL_EXAMPLE, response_only=True)],
    ),
)
class OrderViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [OrderPermissions]
    lookup_field = "dr_order_id"
    lookup_value_regex = r"[0-9A-Za-z_-]+"
    # DjangoModelPermissions reads the model from here; each action reads through a selector.
    queryset = Order.objects.none()

    def get_serializer_class(self):
        return OrderSummarySerializer if self.action == "list" else OrderDetailSerializer

    def get_queryset(self):
        params = self.request.query_params
        state = params.get("state")
        if state and state not in Order.State.values:
            raise serializers.ValidationError({"state": [f"'{state}' is not one of {', '.join(Order.State.values)}."]})
        return api_selectors.orders_list(state=state, upstream_id=params.get("upstream_id"), email=params.get("email"))

    def retrieve(self, request, dr_order_id=None):
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
    def refresh(self, request, dr_order_id=None):
        try:
            services.order_fetch(dr_order_id=dr_order_id)
        except DrNotFound as exc:
            raise NotFound(f"Digital River has no order {dr_order_id}.") from exc
        except DigitalRiverError as exc:
            return Response({"detail": f"Digital River could not be asked: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(OrderDetailSerializer(_order_detail(dr_order_id)).data)


def _order_detail(dr_order_id: str) -> Order:
    order = api_selectors.order_detail_get(dr_order_id=dr_order_id)
    if order is None:
        raise NotFound(f"No order {dr_order_id} is mirrored here.")
    return order


router = SimpleRouter(trailing_slash=True)
router.register("orders", OrderViewSet, basename="order")

urlpatterns = router.urls
