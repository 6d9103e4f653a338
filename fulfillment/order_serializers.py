"""Orders as `/api/orders/…` shows them (snake_case, read-only): the mirror of DR's order with our own
per-line counters, the fulfillment orders, shipments and charges, and the flags that need a person.

Nothing here queries: the queries in `order_queries` prefetch whatever these serializers read.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from commerce.models import Charge, ChargeOperation, Order, OrderLine

from .models import FulfillmentOrder, FulfillmentOrderLine, Shipment, ShipmentItem


class ReadOnlyModelSerializer(serializers.ModelSerializer):
    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields


class OrderFlagsSerializer(serializers.Serializer):
    capture_failed = serializers.BooleanField(read_only=True, help_text="DR refused a capture: a person must look.")
    cancellation_rejected = serializers.BooleanField(read_only=True, help_text="The fulfiller refused a cancellation.")
    backordered = serializers.BooleanField(read_only=True, help_text="Some units are backordered: tell the customer.")
    unknown_sku = serializers.BooleanField(read_only=True, help_text="A line's SKU is not in our catalog.")
    needs_attention = serializers.BooleanField(read_only=True, help_text="Any of the flags above.")


class OrderLineSerializer(ReadOnlyModelSerializer):
    open_quantity = serializers.IntegerField(read_only=True, help_text="Units neither captured nor released yet.")

    class Meta:
        model = OrderLine
        fields = (
            "dr_item_id",
            "dr_sku_id",
            "name",
            "fulfillment_model",
            "dr_state",
            "quantity",
            "amount",
            "tax_amount",
            "tax_rate",
            "pending",
            "backordered",
            "shipped",
            "fulfilled",
            "cancel_requested",
            "cancelled",
            "open_quantity",
        )


class FulfillmentOrderLineSerializer(ReadOnlyModelSerializer):
    order_item_id = serializers.CharField(
        source="order_line.dr_item_id", read_only=True, help_text="The DR order item this line fulfills."
    )

    class Meta:
        model = FulfillmentOrderLine
        fields = (
            "dr_item_id",
            "order_item_id",
            "inventory_item_id",
            "state",
            "quantity",
            "pending",
            "backordered",
            "shipped",
            "cancelled",
            "returned",
            "cancel_instructed",
            "available_time",
        )


class FulfillmentOrderSerializer(ReadOnlyModelSerializer):
    lines = FulfillmentOrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = FulfillmentOrder
        fields = ("dr_fulfillment_order_id", "state", "created_by_us", "dr_updated_at", "lines")


class ShipmentItemSerializer(ReadOnlyModelSerializer):
    order_item_id = serializers.CharField(source="order_line.dr_item_id", read_only=True)

    class Meta:
        model = ShipmentItem
        fields = ("dr_shipment_item_id", "order_item_id", "quantity")


class ShipmentSerializer(ReadOnlyModelSerializer):
    fulfillment_order_id = serializers.CharField(
        source="fulfillment_order.dr_fulfillment_order_id", read_only=True, allow_null=True, default=None
    )
    items = ShipmentItemSerializer(many=True, read_only=True)

    class Meta:
        model = Shipment
        fields = (
            "dr_shipment_id",
            "source",
            "fulfillment_order_id",
            "tracking_company",
            "tracking_number",
            "tracking_url",
            "shipped_at",
            "items",
        )


class ChargeOperationSerializer(ReadOnlyModelSerializer):
    class Meta:
        model = ChargeOperation
        fields = ("dr_id", "amount", "state", "failure_code", "failure_message", "fulfillment_id", "dr_created_at")


class ChargeSerializer(ReadOnlyModelSerializer):
    captures = serializers.SerializerMethodField()
    cancels = serializers.SerializerMethodField()
    refunds = serializers.SerializerMethodField()

    class Meta:
        model = Charge
        fields = (
            "dr_charge_id",
            "amount",
            "currency",
            "state",
            "captured",
            "refunded",
            "dr_updated_at",
            "captures",
            "cancels",
            "refunds",
        )

    def _operations(self, charge: Charge, kind: str) -> list[dict]:
        # Filtered in Python so that the prefetched operations serve all three lists.
        operations = [operation for operation in charge.operations.all() if operation.kind == kind]
        return ChargeOperationSerializer(operations, many=True).data

    @extend_schema_field(ChargeOperationSerializer(many=True))
    def get_captures(self, charge: Charge) -> list[dict]:
        return self._operations(charge, ChargeOperation.Kind.CAPTURE)

    @extend_schema_field(ChargeOperationSerializer(many=True))
    def get_cancels(self, charge: Charge) -> list[dict]:
        return self._operations(charge, ChargeOperation.Kind.CANCEL)

    @extend_schema_field(ChargeOperationSerializer(many=True))
    def get_refunds(self, charge: Charge) -> list[dict]:
        return self._operations(charge, ChargeOperation.Kind.REFUND)


ORDER_SUMMARY_FIELDS = (
    "dr_order_id",
    "upstream_id",
    "state",
    "state_changed_at",
    "fraud_state",
    "email",
    "customer_name",
    "currency",
    "total_amount",
    "dr_created_at",
    "dr_updated_at",
    "flags",
)


class OrderSummarySerializer(ReadOnlyModelSerializer):
    flags = OrderFlagsSerializer(source="*", read_only=True)

    class Meta:
        model = Order
        fields = ORDER_SUMMARY_FIELDS


class OrderDetailSerializer(ReadOnlyModelSerializer):
    flags = OrderFlagsSerializer(source="*", read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)
    fulfillment_orders = FulfillmentOrderSerializer(many=True, read_only=True)
    shipments = ShipmentSerializer(many=True, read_only=True)
    charges = ChargeSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = (
            *ORDER_SUMMARY_FIELDS,
            "checkout_id",
            "locale",
            "ship_to",
            "bill_to",
            "shipping_choice",
            "subtotal",
            "total_tax",
            "total_shipping",
            "captured_amount",
            "cancelled_amount",
            "refunded_amount",
            "available_to_refund_amount",
            "fetched_at",
            "lines",
            "fulfillment_orders",
            "shipments",
            "charges",
        )
