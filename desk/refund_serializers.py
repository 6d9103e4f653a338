"""Refunds as `/api/orders/…` shows them (the input of `POST …/refunds/` is in desk/refund_api.py)."""

from __future__ import annotations

from rest_framework import serializers

from commerce.models import Refund, RefundLine


class RefundLineSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="order_line.dr_item_id", read_only=True, help_text="The DR order item id.")
    name = serializers.CharField(source="order_line.label", read_only=True)

    class Meta:
        model = RefundLine
        fields = ("item_id", "name", "quantity", "amount")
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    state_words = serializers.CharField(source="get_state_display", read_only=True, help_text="The state in words.")
    kind_words = serializers.CharField(source="get_kind_display", read_only=True)
    requested_by = serializers.SerializerMethodField(help_text="Who asked: a user name, or null (DR, the system).")
    retry_of = serializers.IntegerField(source="retry_of_id", read_only=True, allow_null=True)
    lines = RefundLineSerializer(many=True, read_only=True)

    class Meta:
        model = Refund
        fields = (
            "id",
            "dr_refund_id",
            "state",
            "state_words",
            "kind",
            "kind_words",
            "currency",
            "amount",
            "percent",
            "refunded_amount",
            "reason",
            "failure_reason",
            "token_expires_at",
            "initiated_by_dr",
            "for_return",
            "retry_of",
            "requested_by",
            "created_at",
            "lines",
        )
        read_only_fields = fields

    def get_requested_by(self, refund: Refund) -> str | None:
        return refund.requested_by.get_username() if refund.requested_by else None
