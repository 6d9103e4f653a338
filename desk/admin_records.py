"""Read-only pages of an order's money records: refunds, chargebacks, documents, attention items.

Made on the order page; these lists let customer service and operations search across orders.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from commerce.models import AttentionItem, Chargeback, Document, Refund, RefundLine
from core.admin import ReadOnlyAdmin, pretty_json
from fulfillment.admin import ReadOnlyInline, order_link


class _OrderRecordAdmin(ReadOnlyAdmin):
    list_select_related = ("order",)
    list_per_page = 50
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [*[field.name for field in self.model._meta.fields if field.name != "raw"], "order_page", "raw_pretty"]

    @admin.display(description="order", ordering="order__dr_order_id")
    def order_page(self, obj: Any) -> str:
        return order_link(obj.order)

    @admin.display(description="as DR sent it")
    def raw_pretty(self, obj: Any) -> str:
        return pretty_json(getattr(obj, "raw", {}))


class RefundLineInline(ReadOnlyInline):
    model = RefundLine
    fields = ("order_line", "quantity", "amount")


@admin.register(Refund)
class RefundAdmin(_OrderRecordAdmin):
    list_display = ("created_at", "order_page", "kind", "amount", "currency", "state", "refunded_amount")
    list_filter = ("state", "kind", "initiated_by_dr")
    search_fields = ("=dr_refund_id", "=order__dr_order_id", "=reference")
    date_hierarchy = "created_at"
    inlines = [RefundLineInline]


@admin.register(Chargeback)
class ChargebackAdmin(_OrderRecordAdmin):
    list_display = ("dr_created_at", "order_page", "kind", "amount", "currency")
    search_fields = ("=dr_id", "=order__dr_order_id")


@admin.register(Document)
class DocumentAdmin(_OrderRecordAdmin):
    list_display = ("recorded_at", "order_page", "purpose", "dr_file_id")
    list_filter = ("purpose",)
    search_fields = ("=dr_file_id", "=order__dr_order_id")


@admin.register(AttentionItem)
class AttentionItemAdmin(_OrderRecordAdmin):
    list_display = ("raised_at", "order_page", "kind", "reason", "cleared_at", "cleared_because")
    list_filter = ("kind", ("cleared_at", admin.EmptyFieldListFilter))
    search_fields = ("=order__dr_order_id",)
    date_hierarchy = "raised_at"
