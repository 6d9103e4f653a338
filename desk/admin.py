"""Customer service's order screens: find an order, read everything about it on one page, and
re-read it from Digital River. Orders are DR's data mirrored here, so nothing on them is editable."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from commerce import services
from commerce.models import ATTENTION_FLAGS, Order, OrderQuerySet
from core.admin import ReadOnlyAdmin, natural_key_url, pretty_json
from digitalriver import errors as dr_errors
from digitalriver.subjects import subject_page_register
from fulfillment.cancellations import (
    CLOSED,
    CancellationPlan,
    CancellationRefused,
    InvalidCancellation,
    cancellable_units,
    cancellation_execute,
)
from fulfillment.shipments import ShipmentPlan, ShipmentRefused, shipment_execute

from . import documents, returns, selectors
from .attention import ACKNOWLEDGE_PERMISSION, acknowledge_view
from .forms import CancelItemsForm, PerLineQuantitiesForm, RecordShipmentForm, self_fulfilled
from .order_export import export_url
from .permissions import can_refresh_order
from .refund_page import refund_rows
from .refunds import can_refund, refund_urls
from .timeline_technical import links_the_viewer_may_open

# Enough for a normal order's whole story; the full timeline is one click away.
TIMELINE_ON_PAGE = 50
# The "full" timeline stops there: a normal order's technical story is tens of entries, but one with
# thousands of DR events (an integration that loops) took seconds to draw; the lists go further.
TIMELINE_WHOLE = 500

CANCEL_PERMISSION = "commerce.cancel_order_lines"
SHIPMENT_PERMISSION = "commerce.record_shipment"


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "needs_attention"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> tuple[tuple[str, str], ...]:
        return (("yes", "Yes: a flag is raised"), ("no", "No"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        assert isinstance(queryset, OrderQuerySet)  # the order list's rows
        if self.value() == "yes":
            return queryset.needing_attention()
        if self.value() == "no":
            return queryset.not_needing_attention()
        return queryset


def address_lines(contact: dict) -> list[str]:
    address = contact.get("address") or {}
    city = " ".join(part for part in (address.get("postalCode"), address.get("city"), address.get("state")) if part)
    return [
        part
        for part in (
            contact.get("name"),
            address.get("line1"),
            address.get("line2"),
            city,
            address.get("country"),
            contact.get("phone"),
        )
        if part
    ]


def posted(request: HttpRequest) -> QueryDict | None:
    return request.POST if request.method == "POST" else None


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    # What an agent reads first on the left; every column fits at 1280 px beside the filters.
    list_display = (
        "dr_order_id",
        "placed",
        "customer",
        "state_badge",
        "total",
        "flag_badges",
        "upstream_id",
    )
    list_filter = (
        "state",
        NeedsAttentionFilter,
        *(flag.field for flag in ATTENTION_FLAGS),
    )
    # The search itself is desk.selectors.orders_matching (get_search_results); this shows the box.
    search_fields = ("dr_order_id",)
    search_help_text = selectors.SEARCH_HELP
    date_hierarchy = "dr_created_at"
    list_per_page = 50
    show_full_result_count = False
    change_form_template = "admin/commerce/order/change_form.html"
    fieldsets = (
        (
            "Customer and shipping",
            {
                "fields": (
                    ("customer_name", "email", "locale"),
                    ("ship_to_address", "bill_to_address", "shipping_choice_text"),
                )
            },
        ),
        (
            "Money",
            {
                "fields": (
                    ("subtotal", "total_tax", "total_shipping", "total_amount"),
                    ("captured_amount", "cancelled_amount", "refunded_amount", "available_to_refund_amount"),
                )
            },
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> list[str]:
        return [
            *[field.name for field in self.model._meta.fields],
            "ship_to_address",
            "bill_to_address",
            "shipping_choice_text",
        ]

    # --- the list ---

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        if not search_term.strip():
            return queryset, False
        return selectors.orders_matching(queryset, search_term), False

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Order) -> str:
        return format_html('<span class="order-state order-state-{}">{}</span>', obj.state, obj.get_state_display())

    @admin.display(description="flags")
    def flag_badges(self, obj: Order) -> str:
        # In a sentence's case: "capture failed", "unknown SKU".
        raised = [(flag.severity, flag.label[0].lower() + flag.label[1:]) for flag in obj.raised_flags]
        if not raised:
            return "-"
        return format_html_join(" ", '<span class="order-flag order-flag-{}">⚑ {}</span>', raised)

    @admin.display(description="customer", ordering="customer_name")
    def customer(self, obj: Order) -> str:
        # Name and email in one column keep the list one screen wide next to the filters.
        return format_html('{}<br><span class="order-quiet">{}</span>', obj.customer_name or "-", obj.email or "")

    @admin.display(description="total", ordering="total_amount")
    def total(self, obj: Order) -> str:
        return format_html('<span class="order-nowrap">{} {}</span>', obj.total_amount, obj.currency)

    @admin.display(description="placed", ordering="dr_created_at")
    def placed(self, obj: Order) -> str:
        if obj.dr_created_at is None:
            return "-"
        when = localtime(obj.dr_created_at)
        return format_html(
            '<span class="order-nowrap">{}</span><br><span class="order-quiet">{}</span>',
            date_format(when, "j M Y"),
            date_format(when, "H:i"),
        )

    # --- the page ---

    @admin.display(description="ship to")
    def ship_to_address(self, obj: Order) -> str:
        return format_html_join("", "{}<br>", ((line,) for line in address_lines(obj.ship_to))) or "-"

    @admin.display(description="bill to")
    def bill_to_address(self, obj: Order) -> str:
        return format_html_join("", "{}<br>", ((line,) for line in address_lines(obj.bill_to))) or "-"

    @admin.display(description="shipping choice")
    def shipping_choice_text(self, obj: Order) -> str:
        choice = obj.shipping_choice or {}
        if not choice:
            return "-"
        parts = [
            choice.get("description") or choice.get("serviceLevel") or "",
            f"service level {choice['serviceLevel']}" if choice.get("serviceLevel") else "",
            f"{choice['amount']} {obj.currency}" if choice.get("amount") is not None else "",
            f"terms {choice['shippingTerms']}" if choice.get("shippingTerms") else "",
        ]
        return " · ".join(part for part in parts if part)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Order | None = None,
    ) -> HttpResponse:
        if obj is not None:
            technical = request.GET.get("technical") == "1"
            page = selectors.order_page(
                order=obj, timeline_limit=TIMELINE_ON_PAGE, technical=technical, viewer=request.user
            )
            context.update(
                page=page,
                technical=technical,
                raw_pretty=pretty_json(obj.raw),
                can_refresh=self.has_refresh_permission(request, obj),
                can_cancel=obj.state not in CLOSED and self.has_cancel_permission(request, obj),
                can_record_shipment=bool(self_fulfilled(page.lines)) and self.has_shipment_permission(request, obj),
                can_acknowledge=request.user.has_perm(ACKNOWLEDGE_PERMISSION),
                **returns.returns_context(self, request, obj),
                documents=documents.documents_section(order=obj, user=request.user),
            )
            context.update(refund_rows=refund_rows(order=obj), can_refund=can_refund(request))
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- buttons and the full timeline ---

    def get_urls(self) -> list[URLPattern]:
        def view(method: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(method)

        return [
            path("<path:object_id>/refresh/", view(self.refresh_view), name="commerce_order_refresh"),
            path("<path:object_id>/timeline/", view(self.timeline_view), name="commerce_order_timeline"),
            path("<path:object_id>/cancel/", view(self.cancel_items_view), name="commerce_order_cancel"),
            path("<path:object_id>/ship/", view(self.record_shipment_view), name="commerce_order_record_shipment"),
            path(
                "<path:object_id>/acknowledge/",
                view(partial(acknowledge_view, admin=self)),
                name="commerce_order_acknowledge",
            ),
            *refund_urls(self),
            path(
                "<path:object_id>/return/",
                view(partial(returns.start_return_view, self)),
                name="commerce_order_start_return",
            ),
            path(
                "<path:object_id>/return-received/",
                view(partial(returns.return_received_view, self)),
                name="commerce_order_return_received",
            ),
            *documents.admin_urls(self),
            export_url(self),
            natural_key_url(self, "dr_order_id", "commerce_order_by_dr_id"),
            *super().get_urls(),
        ]

    def has_refresh_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # Re-reading DR's copy rewrites the mirror: the same rule as the API's refresh.
        return self.has_view_permission(request, obj) and can_refresh_order(request.user)

    def has_cancel_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return self.has_view_permission(request, obj) and request.user.has_perm(CANCEL_PERMISSION)

    def has_shipment_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return self.has_view_permission(request, obj) and request.user.has_perm(SHIPMENT_PERMISSION)

    def order_or_404(self, request: HttpRequest, object_id: str) -> Order:
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order")
        return order

    @method_decorator(require_POST)
    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        order = self.order_or_404(request, object_id)
        if not self.has_refresh_permission(request, order):
            raise PermissionDenied
        try:
            services.order_fetch(dr_order_id=order.dr_order_id)
        except ImproperlyConfigured as exc:
            text = f"This server cannot call Digital River: {exc}. Tell an operator."
            self.message_user(request, text, messages.ERROR)
        except dr_errors.DigitalRiverError as exc:
            if exc.transient:
                text = "Digital River could not be reached, so the order was not refreshed. Try again in a few minutes."
            elif isinstance(exc, dr_errors.NotFound):
                text = f"Digital River does not know order {order.dr_order_id}; nothing was changed."
            else:
                text = "Digital River refused to send the order; nothing was changed."
            self.message_user(request, f"{text} ({exc})", messages.ERROR)
        else:
            self.message_user(request, f"Order {order.dr_order_id} now matches Digital River.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:commerce_order_change", args=[order.pk]))

    def timeline_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        order = self.order_or_404(request, object_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        technical = request.GET.get("technical") == "1"
        # One more entry than shown tells whether there is more.
        timeline = selectors.order_timeline(order=order, technical=technical, limit=TIMELINE_WHOLE + 1)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Timeline of order {order.dr_order_id}",
            "opts": self.opts,
            "original": order,
            "technical": technical,
            "timeline": links_the_viewer_may_open(timeline[:TIMELINE_WHOLE], user=request.user),
            "timeline_truncated": len(timeline) > TIMELINE_WHOLE,
            "older_in": [
                (label, reverse(f"admin:digitalriver_{model}_changelist") + f"?q={order.dr_order_id}")
                for label, model in (
                    ("DR events", "webhookevent"),
                    ("instructions", "instruction"),
                    ("API calls", "apicall"),
                )
                if request.user.has_perm(f"digitalriver.view_{model}")
            ],
        }
        return TemplateResponse(request, "admin/commerce/order/timeline.html", context)

    # --- customer service's actions: a form, a confirmation, then the service ---

    def cancel_items_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        order = self.order_or_404(request, object_id)
        if not self.has_cancel_permission(request, order):
            raise PermissionDenied
        user = request.user
        assert user.is_authenticated  # the admin's views admit signed-in staff only
        form = CancelItemsForm(posted(request), order=order, cancellable=cancellable_units(order=order))
        return self.form_then_confirm(
            request,
            order,
            form,
            template="cancel_items",
            titles=("Cancel items", "Confirm the cancellation"),
            execute=lambda plan: cancellation_execute(plan=plan, by=user),
            refusals=(CancellationRefused, InvalidCancellation),
            success=lambda steps: (
                f"Cancellation sent: {steps}. Its progress shows under Cancellation requests and in the timeline."
            ),
            anchor="cancellations",
        )

    def record_shipment_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        order = self.order_or_404(request, object_id)
        if not self.has_shipment_permission(request, order):
            raise PermissionDenied
        user = request.user
        assert user.is_authenticated  # the admin's views admit signed-in staff only
        form = RecordShipmentForm(posted(request), order=order)
        return self.form_then_confirm(
            request,
            order,
            form,
            template="record_shipment",
            titles=("Record a shipment", "Confirm the shipment"),
            execute=lambda plan: shipment_execute(plan=plan, by=user),
            refusals=(ShipmentRefused,),
            success=lambda steps: f"Shipment recorded: {steps}. The capture is queued and the customer emailed.",
            anchor="shipments",
        )

    def form_then_confirm(
        self,
        request: HttpRequest,
        order: Order,
        form: CancelItemsForm | RecordShipmentForm,
        *,
        template: str,
        titles: tuple[str, str],
        execute: Callable[[Any], object],
        refusals: tuple[type[Exception], ...],
        success: Callable[[str], str],
        anchor: str,
    ) -> HttpResponse:
        """GET shows the form; a valid POST shows the service's plan to confirm ("Change" goes back
        to the form); the confirmed POST executes that plan. A refusal puts its reason on the form.

        The confirmation carries the plan's fingerprint: if the order changed before the agent
        confirmed, the new plan is shown to confirm instead of executing something not shown.
        """
        form_title, confirm_title = titles
        if request.method != "POST" or "edit" in request.POST or not form.is_valid():
            return self.render_action(request, order, template, form, title=form_title)
        try:
            plan = form.plan()
        except refusals as exc:
            form.add_error(None, str(exc))
            return self.render_action(request, order, template, form, title=form_title)
        if plan.refusal:
            form.add_error(None, plan.refusal)
            return self.render_action(request, order, template, form, title=form_title)
        shown = request.POST.get("plan", plan.fingerprint)
        if "confirm" not in request.POST or shown != plan.fingerprint:
            if "confirm" in request.POST:
                self.message_user(
                    request, "The order changed since you looked: this is what would happen now.", messages.WARNING
                )
            return self.render_action(request, order, template, form, title=confirm_title, plan=plan)
        try:
            execute(plan)
        except refusals as exc:
            form.add_error(None, str(exc))
            return self.render_action(request, order, template, form, title=form_title)
        steps = "; ".join(step.what for step in plan.steps)
        self.message_user(request, success(steps), messages.SUCCESS)
        return HttpResponseRedirect(f"{reverse('admin:commerce_order_change', args=[order.pk])}#{anchor}")

    def render_action(
        self,
        request: HttpRequest,
        order: Order,
        template: str,
        form: PerLineQuantitiesForm,
        *,
        title: str,
        plan: CancellationPlan | ShipmentPlan | None = None,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: order {order.dr_order_id}",
            "opts": self.opts,
            "original": order,
            "form": form,
            "plan": plan.steps if plan else None,
            "plan_fingerprint": plan.fingerprint if plan else "",
            "plan_money": getattr(plan, "money", None),  # a return moves no money when it starts
        }
        return TemplateResponse(request, f"admin/commerce/order/{template}.html", context)


# Events, instructions and calls about an order link to its page.
subject_page_register("order", lambda dr_order_id: reverse("admin:commerce_order_by_dr_id", args=[dr_order_id]))

from . import admin_records  # noqa: E402,F401  (registers the money records' pages)
