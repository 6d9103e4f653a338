"""What `/api/orders/…` shows and takes, in snake_case.

Orders are shown read-only: the mirror of DR's order with our own per-line counters, the
fulfillment orders, shipments and charges, and the flags that need a person. Nothing here queries:
the selectors (`desk.selectors.order_detail_get`) prefetch whatever these serializers read.

Customer service's actions (`…/cancellations/`, `…/shipments/`) are taken by input serializers that
reject what is malformed (400, naming the field); whether the rules allow a cancellation or a
shipment is the services' call (409). Item ids are checked against the order given in the
serializer's context, so an unknown item is a malformed request for both APIs alike.
"""

from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import Field

from commerce.chargebacks import chargeback_sentence
from commerce.documents import documents_expected
from commerce.models import (
    ATTENTION_FLAGS,
    AttentionItem,
    Charge,
    Chargeback,
    ChargeOperation,
    Document,
    Order,
    OrderLine,
)
from fulfillment.models import (
    CancellationLine,
    CancellationRequest,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Return,
    ReturnLine,
    Shipment,
    ShipmentItem,
)
from fulfillment.shipments import TRACKING_LIMITS

from .refund_serializers import RefundSerializer


class ReadOnlyModelSerializer(serializers.ModelSerializer):
    def get_fields(self) -> dict[str, Field]:
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields


class OrderFlagsSerializer(serializers.Serializer):
    needs_attention = serializers.BooleanField(read_only=True, help_text="Any of the flags above.")

    def get_fields(self) -> dict[str, Field]:
        flags = {
            flag.field: serializers.BooleanField(read_only=True, help_text=flag.meaning) for flag in ATTENTION_FLAGS
        }
        return {**flags, **super().get_fields()}


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
            "captured",
            "capture_failed",
            "cancel_requested",
            "cancelled",
            "open_quantity",
            "return_requested",
            "returned",
            "captured_amount",
            "refunded_amount",
        )


class AttentionItemSerializer(ReadOnlyModelSerializer):
    title = serializers.CharField(source="flag.label", read_only=True)
    what_to_do = serializers.CharField(source="flag.what_to_do", read_only=True)

    class Meta:
        model = AttentionItem
        fields = ("kind", "title", "reason", "what_to_do", "raised_at", "cleared_at", "cleared_because")


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
        # many=True makes a ListSerializer, whose data is a list; the stubs only know the one-object form.
        return cast("list[dict]", ChargeOperationSerializer(operations, many=True).data)

    @extend_schema_field(ChargeOperationSerializer(many=True))
    def get_captures(self, charge: Charge) -> list[dict]:
        return self._operations(charge, ChargeOperation.Kind.CAPTURE)

    @extend_schema_field(ChargeOperationSerializer(many=True))
    def get_cancels(self, charge: Charge) -> list[dict]:
        return self._operations(charge, ChargeOperation.Kind.CANCEL)

    @extend_schema_field(ChargeOperationSerializer(many=True))
    def get_refunds(self, charge: Charge) -> list[dict]:
        return self._operations(charge, ChargeOperation.Kind.REFUND)


class DocumentSerializer(ReadOnlyModelSerializer):
    kind = serializers.CharField(source="get_purpose_display", read_only=True, help_text="Invoice or Credit memo.")
    download = serializers.SerializerMethodField(help_text="Where to download the PDF (this API).")

    class Meta:
        model = Document
        fields = ("dr_file_id", "dr_id", "purpose", "kind", "dr_created_at", "recorded_at", "download")

    def get_download(self, document: Document) -> str:
        return f"/api/orders/{document.order.dr_order_id}/documents/{document.dr_file_id}/"


class ChargebackSerializer(ReadOnlyModelSerializer):
    description = serializers.SerializerMethodField(help_text="What happened, in words for the customer.")

    class Meta:
        model = Chargeback
        fields = ("dr_id", "kind", "amount", "currency", "dr_created_at", "description")

    def get_description(self, chargeback: Chargeback) -> str:
        return chargeback_sentence(chargeback)


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


class ReturnLineSerializer(ReadOnlyModelSerializer):
    item_id = serializers.CharField(source="order_line.dr_item_id", read_only=True, help_text="The DR order item id.")
    name = serializers.CharField(source="order_line.label", read_only=True)
    quantity_accepted = serializers.IntegerField(read_only=True, help_text="Units received back so far.")

    class Meta:
        model = ReturnLine
        fields = ("item_id", "name", "quantity", "quantity_accepted", "state")


class ReturnSerializer(ReadOnlyModelSerializer):
    api = serializers.CharField(
        read_only=True,
        help_text="fulfillment_returns: DR's warehouse takes the goods back and reports receipt; "
        "returns: our partner takes them back and we record receipt.",
    )
    # Plain text: the schema already has a "state" enum (the order's), and two would collide in name.
    state = serializers.CharField(
        read_only=True,
        help_text=f"One of {', '.join(Return.State.values)}: requested (not yet at DR) → created → pending "
        "(approved; the customer sends the goods to `location`) → accepted (received) or rejected; failed: "
        "DR refused it.",
    )
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    type = serializers.CharField(
        read_only=True, help_text="client: asked by the customer; warehouse: a refused parcel nobody asked to return."
    )
    fulfillment_order_id = serializers.CharField(
        source="fulfillment_order.dr_fulfillment_order_id", read_only=True, allow_null=True, default=None
    )
    lines = ReturnLineSerializer(many=True, read_only=True)

    class Meta:
        model = Return
        fields = (
            "id",
            "api",
            "type",
            "state",
            "state_label",
            "dr_return_id",
            "fulfillment_order_id",
            "reason",
            "location",
            "failure_reason",
            "created_at",
            "updated_at",
            "lines",
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
    attention_items = AttentionItemSerializer(
        many=True, read_only=True, help_text="What needs (or needed) a person, newest first, open and cleared."
    )
    refunds = RefundSerializer(many=True, read_only=True, help_text="Refunds asked by us or made by DR, newest first.")
    returns = ReturnSerializer(many=True, read_only=True)
    documents = DocumentSerializer(many=True, read_only=True)
    documents_note = serializers.SerializerMethodField(
        help_text="Why an invoice or credit memo is not there yet (empty when both are)."
    )
    chargebacks = ChargebackSerializer(many=True, read_only=True)

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
            "payment_method",
            "attention_items",
            "lines",
            "fulfillment_orders",
            "shipments",
            "charges",
            "refunds",
            "returns",
            "documents",
            "documents_note",
            "chargebacks",
        )

    def get_documents_note(self, order: Order) -> str:
        return documents_expected(order=order)


# --- customer service's actions ---------------------------------------------------------------------


class WholeNumberField(serializers.IntegerField):
    """An integer as JSON writes it: DRF's IntegerField would also take "2" and 2.0."""

    default_error_messages = {"invalid": "A whole number is required, e.g. 1 (not a string or a fraction)."}

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON's true or false: DRF's BooleanField would also take "yes", "true", "on", 1 and "1"."""

    default_error_messages = {"invalid": "Must be a valid boolean: true or false in JSON, not a string or a number."}

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class OrderItemQuantitySerializer(serializers.Serializer):
    item_id = serializers.CharField(max_length=64, help_text="The DR order item id (a line of this order).")
    quantity = WholeNumberField(min_value=1, help_text="How many units of that line.")

    def validate_item_id(self, value: str) -> str:
        order = self.context["order"]
        if not order.lines.filter(dr_item_id=value).exists():
            raise serializers.ValidationError(f"Order {order.dr_order_id} has no item {value}.")
        return value


def each_item_once(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At least one item, none twice: one entry per line with its total keeps the counts plain."""
    # Checked here rather than with allow_empty=False, whose error DRF nests under items.non_field_errors.
    if not items:
        raise serializers.ValidationError("Give at least one item.")
    seen = set()
    for item in items:
        if item["item_id"] in seen:
            raise serializers.ValidationError(
                f"Item {item['item_id']} is listed twice: give each item once, with its total quantity."
            )
        seen.add(item["item_id"])
    return items


class CancellationInputSerializer(serializers.Serializer):
    items = OrderItemQuantitySerializer(
        many=True, required=False, help_text="The units to cancel; or send `all` instead."
    )
    all = StrictBooleanField(required=False, default=False, help_text="Cancel every open unit of the order.")
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=CancellationRequest._meta.get_field("reason").max_length,
        help_text="Why, in the agent's words; sent to DR with a warehouse cancellation.",
    )

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return each_item_once(items)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["all"] and "items" in attrs:
            raise serializers.ValidationError({"all": ['Send either "items" or "all": true, not both.']})
        if not attrs["all"] and "items" not in attrs:
            raise serializers.ValidationError(
                {"items": ['Say which items to cancel, or send "all": true to cancel the whole order.']}
            )
        return attrs

    def service_arguments(self) -> dict[str, Any]:
        """The validated request as `order_cancel` takes it."""
        data = self.validated_data
        items = [(item["item_id"], item["quantity"]) for item in data.get("items", [])]
        return {"items": items, "cancel_all": data["all"], "reason": data["reason"]}


class CancellationLineSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="order_line.dr_item_id", read_only=True, help_text="The DR order item id.")
    sku_id = serializers.CharField(source="order_line.dr_sku_id", read_only=True)
    name = serializers.CharField(source="order_line.name", read_only=True)
    quantity_accepted = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Units the fulfiller agreed to cancel; null until it answers."
    )
    quantity_released = serializers.IntegerField(read_only=True, help_text="Accepted units whose payment is released.")

    class Meta:
        model = CancellationLine
        fields = ("item_id", "sku_id", "name", "quantity", "quantity_accepted", "quantity_released")
        read_only_fields = fields


class StateChangeSerializer(serializers.Serializer):
    state = serializers.CharField(read_only=True)
    at = serializers.DateTimeField(read_only=True)
    description = serializers.CharField(read_only=True, help_text="What moved it, e.g. how many units were accepted.")


class CancellationRequestSerializer(serializers.ModelSerializer):
    route = serializers.ChoiceField(
        choices=CancellationRequest.Route.choices,
        read_only=True,
        help_text="fulfillment_cancellation: the fulfiller is asked, then the payment is released; "
        "fulfillment: the payment is released directly.",
    )
    # Plain text: the schema already has a "state" enum (the order's), and two would collide in name.
    state = serializers.CharField(
        read_only=True,
        help_text=f"One of {', '.join(CancellationRequest.State.values)}. "
        "requested → submitted (the fulfiller has it) → accepted, partially_accepted or rejected → "
        "released; a request released directly goes from requested to released; failed: DR refused it.",
    )
    fulfillment_order_id = serializers.CharField(
        source="fulfillment_order.dr_fulfillment_order_id", read_only=True, allow_null=True, default=None
    )
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, allow_null=True, default=None)
    lines = CancellationLineSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField(help_text="Each state the request reached, oldest first.")

    class Meta:
        model = CancellationRequest
        fields = (
            "id",
            "route",
            "state",
            "reason",
            "fulfillment_order_id",
            "dr_cancellation_id",
            "requested_by",
            "created_at",
            "updated_at",
            "lines",
            "progress",
        )
        read_only_fields = fields

    @extend_schema_field(StateChangeSerializer(many=True))
    def get_progress(self, request: CancellationRequest) -> list:
        """Needs `state_changes` in the context: the request's logged transitions (StateLog) by its pk."""
        asked = {"state": CancellationRequest.State.REQUESTED, "at": request.created_at, "description": request.reason}
        moves = [
            {"state": change.state, "at": change.timestamp, "description": change.description or ""}
            for change in self.context["state_changes"].get(request.pk, [])
        ]
        return cast("list", StateChangeSerializer([asked, *moves], many=True).data)


class OrderCancellationsSerializer(serializers.Serializer):
    dr_order_id = serializers.CharField(read_only=True)
    requests = CancellationRequestSerializer(many=True, read_only=True)


class ShipmentInputSerializer(serializers.Serializer):
    items = OrderItemQuantitySerializer(many=True, help_text="The units that shipped.")
    tracking_company = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=TRACKING_LIMITS["tracking_company"]
    )
    tracking_number = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=TRACKING_LIMITS["tracking_number"]
    )
    tracking_url = serializers.URLField(
        required=False, allow_blank=True, default="", max_length=TRACKING_LIMITS["tracking_url"]
    )

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return each_item_once(items)

    def service_arguments(self) -> dict[str, Any]:
        """The validated request as `shipment_plan` takes it."""
        data = self.validated_data
        return {
            "items": [(item["item_id"], item["quantity"]) for item in data["items"]],
            "tracking_company": data["tracking_company"],
            "tracking_number": data["tracking_number"],
            "tracking_url": data["tracking_url"],
        }


class RecordedShipmentItemSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="order_line.dr_item_id", read_only=True, help_text="The DR order item id.")

    class Meta:
        model = ShipmentItem
        fields = ("item_id", "quantity")
        read_only_fields = fields


class RecordedShipmentSerializer(serializers.ModelSerializer):
    items = RecordedShipmentItemSerializer(many=True, read_only=True)
    capture = serializers.SerializerMethodField(
        help_text="queued: DR is asked to capture these units' payment (POST /fulfillments); "
        "the order's lines count them as fulfilled once DR accepts."
    )

    class Meta:
        model = Shipment
        fields = ("id", "tracking_company", "tracking_number", "tracking_url", "shipped_at", "items", "capture")
        read_only_fields = fields

    def get_capture(self, shipment: Shipment) -> str:
        return "queued"
