"""Fulfillment orders, shipments and DR's fulfillment records as DR reported them: read-only, found by
DR's ids or the order's, each leading back to the order page where customer service reads them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from commerce.models import Order
from core.admin import ReadOnlyAdmin, pretty_json

from .email_previews import email_previews
from .models import (
    TRACKABLE_SCHEMES,
    CancellationLine,
    CancellationRequest,
    DrFulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Notification,
    Return,
    ReturnLine,
    Shipment,
    ShipmentItem,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyLineInline(ReadOnlyInline):
    """Rows about an order line, named after what the customer bought."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[FulfillmentOrderLine | ShipmentItem | CancellationLine]:
        return super().get_queryset(request).select_related("order_line")

    @admin.display(description="item")
    def item(self, obj: FulfillmentOrderLine | ShipmentItem | CancellationLine) -> str:
        return obj.order_line.name or obj.order_line.dr_sku_id


class FulfillmentOrderLineInline(ReadOnlyLineInline):
    model = FulfillmentOrderLine
    fields = (
        "item",
        "dr_item_id",
        "inventory_item_id",
        "quantity",
        "pending",
        "backordered",
        "available_time",
        "shipped",
        "cancelled",
        "cancel_instructed",
        "returned",
        "state",
    )


class ShipmentItemInline(ReadOnlyLineInline):
    model = ShipmentItem
    fields = ("item", "dr_shipment_item_id", "quantity")


class CancellationLineInline(ReadOnlyLineInline):
    model = CancellationLine
    fields = ("item", "quantity", "quantity_accepted", "quantity_released", "fulfillment_order_line")


def order_link(order: Order) -> str:
    url = reverse("admin:commerce_order_change", args=[order.pk])
    return format_html('<a href="{}">{}</a>', url, order.dr_order_id)


def tracking_link(record: Shipment | DrFulfillment) -> str:
    """'UPS 1Z…' linked to the carrier's page when DR gave a web address for it."""
    number = record.tracking_number or "track"
    if record.tracking_url.startswith(TRACKABLE_SCHEMES):
        return format_html(
            '{} <a href="{}" target="_blank" rel="noopener noreferrer">{}</a>',
            record.tracking_company,
            record.tracking_url,
            number,
        )
    return f"{record.tracking_company} {record.tracking_number}".strip() or "-"


class MirrorAdmin(ReadOnlyAdmin):
    """Every field read-only, plus the order as a link and DR's raw copy."""

    list_select_related = ("order",)
    list_per_page = 50
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*[field.name for field in self.model._meta.fields], "order_page", "raw_pretty"]

    @admin.display(description="order", ordering="order__dr_order_id")
    def order_page(self, obj: FulfillmentOrder | Shipment | DrFulfillment) -> str:
        return order_link(obj.order)

    @admin.display(description="DR's copy")
    def raw_pretty(self, obj: FulfillmentOrder | Shipment | DrFulfillment) -> str:
        return pretty_json(obj.raw)


@admin.register(FulfillmentOrder)
class FulfillmentOrderAdmin(MirrorAdmin):
    list_display = ("dr_fulfillment_order_id", "order_page", "state", "created_by_us", "dr_updated_at")
    list_filter = ("state", "created_by_us")
    search_fields = ("=dr_fulfillment_order_id", "=order__dr_order_id", "=lines__dr_item_id")
    inlines = [FulfillmentOrderLineInline]
    fieldsets = (
        (None, {"fields": ("dr_fulfillment_order_id", "order_page", "state", "created_by_us")}),
        ("Times", {"fields": ("dr_updated_at", "created_at")}),
        ("DR's copy", {"fields": ("raw_pretty",), "classes": ("collapse",)}),
    )


@admin.register(Shipment)
class ShipmentAdmin(MirrorAdmin):
    list_display = ("dr_shipment_id", "order_page", "shipped_at", "source", "tracking")
    list_filter = ("source", "tracking_company")
    search_fields = ("=dr_shipment_id", "=order__dr_order_id", "=tracking_number", "=items__dr_shipment_item_id")
    date_hierarchy = "shipped_at"
    inlines = [ShipmentItemInline]
    fieldsets = (
        (None, {"fields": ("dr_shipment_id", "order_page", "fulfillment_order", "source", "shipped_at")}),
        ("Tracking", {"fields": ("tracking_company", "tracking_number", "tracking")}),
        ("DR's copy", {"fields": ("raw_pretty",), "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "tracking"]

    @admin.display(description="tracking")
    def tracking(self, obj: Shipment) -> str:
        return tracking_link(obj)


@admin.register(DrFulfillment)
class DrFulfillmentAdmin(MirrorAdmin):
    list_display = (
        "dr_fulfillment_id",
        "order_page",
        "dr_shipment_id",
        "tracking_company",
        "tracking",
        "dr_created_at",
    )
    search_fields = ("=dr_fulfillment_id", "=dr_shipment_id", "=order__dr_order_id", "=tracking_number")
    date_hierarchy = "dr_created_at"
    fieldsets = (
        (None, {"fields": ("dr_fulfillment_id", "order_page", "dr_shipment_id", "dr_created_at")}),
        ("Tracking", {"fields": ("tracking_company", "tracking_number", "tracking")}),
        ("Items", {"fields": ("items_pretty",)}),
        ("DR's copy", {"fields": ("raw_pretty",), "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "tracking", "items_pretty"]

    @admin.display(description="tracking")
    def tracking(self, obj: DrFulfillment) -> str:
        return tracking_link(obj)

    @admin.display(description="items (captured quantity, released cancelQuantity)")
    def items_pretty(self, obj: DrFulfillment) -> str:
        return pretty_json(obj.items)


@admin.register(CancellationRequest)
class CancellationRequestAdmin(ReadOnlyAdmin):
    """Customer service's cancellations, followed until DR released the payment; made on the order."""

    list_display = ("created_at", "order_page", "state", "route", "requested_by", "dr_cancellation_id")
    list_filter = ("state", "route")
    search_fields = ("=dr_cancellation_id", "=order__dr_order_id")
    list_select_related = ("order", "requested_by")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    inlines = [CancellationLineInline]
    fieldsets = (
        (None, {"fields": ("order_page", "state", "route", "reason", "requested_by", "created_at", "updated_at")}),
        ("Digital River", {"fields": ("dr_cancellation_id", "fulfillment_order", "instruction")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*[field.name for field in self.model._meta.fields], "order_page"]

    @admin.display(description="order", ordering="order__dr_order_id")
    def order_page(self, obj: CancellationRequest) -> str:
        return order_link(obj.order)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Emails the flow sent to customers and operations: once per event, with any sending error."""

    list_display = ("created_at", "kind", "to", "subject", "order_page", "sent_at", "attempts")
    list_filter = ("kind", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("=to", "=order__dr_order_id", "subject")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    fields = ("order_page", "kind", "to", "subject", "body", "created_at", "sent_at", "attempts", "error", "key")
    change_list_template = "admin/fulfillment/notification/change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.fields

    def get_urls(self) -> list[URLPattern]:
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="fulfillment_notification_preview"), *super().get_urls()]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """Every customer email kind rendered for a sample order: what customers read, before they do."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Customer emails: a sample of each",
            "opts": self.opts,
            "previews": email_previews(),
        }
        return TemplateResponse(request, "admin/fulfillment/notification/preview.html", context)

    @admin.display(description="order", ordering="order__dr_order_id")
    def order_page(self, obj: Notification) -> str:
        return order_link(obj.order)


class ReturnLineInline(ReadOnlyInline):
    model = ReturnLine
    fields = ("order_line", "fulfillment_order_line", "dr_item_id", "quantity", "quantity_accepted", "state")


@admin.register(Return)
class ReturnAdmin(ReadOnlyAdmin):
    """Goods coming back, through DR's warehouse or our own partner; started on the order page."""

    list_display = ("created_at", "order_page", "api", "type", "state", "dr_return_id")
    list_filter = ("state", "api", "type")
    search_fields = ("=dr_return_id", "=order__dr_order_id")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    inlines = [ReturnLineInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*[field.name for field in self.model._meta.fields if field.name != "raw"], "order_page", "raw_pretty"]

    @admin.display(description="order", ordering="order__dr_order_id")
    def order_page(self, obj: Return) -> str:
        return order_link(obj.order)

    @admin.display(description="as DR sent it")
    def raw_pretty(self, obj: Return) -> str:
        return pretty_json(obj.raw)
