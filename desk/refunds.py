"""The order page's "Refund" and "Retry refund": a form, a confirmation that says how much money goes
back to which payment method for what, then ``commerce.refunds`` executes the plan that was shown
(made again under the order's lock, refused if it changed). The rules live in the service."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from commerce.models import Order, Refund
from commerce.refunds import (
    InvalidRefund,
    RefundAvailable,
    RefundPlan,
    RefundRefused,
    refund_available,
    refund_execute,
    refund_plan,
    refund_retry_plan,
)
from fulfillment.returns import return_refund_offer

from .forms import PerLineQuantitiesForm, line_field_name

if TYPE_CHECKING:
    from .admin import OrderAdmin

REFUND_PERMISSION = "commerce.refund_order"
CHOICES = (
    ("remaining", "Everything still refundable on the order"),
    ("amount", "An amount"),
    ("percent", "A percentage of what is still refundable"),
    ("units", "Units of some lines (product and tax)"),
    ("shipping", "The shipping"),
    ("tax", "The tax, in full"),
    ("duty", "The duty"),
    ("importer_tax", "The importer tax"),
)


def can_refund(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated and request.user.has_perm(REFUND_PERMISSION))


class RefundForm(PerLineQuantitiesForm):
    what = forms.ChoiceField(label="Refund", choices=CHOICES, widget=forms.RadioSelect, initial="remaining")
    amount = forms.DecimalField(
        required=False, min_value=Decimal("0.01"), decimal_places=2, max_digits=14, help_text="For “An amount”."
    )
    percent = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_value=Decimal("100"),
        decimal_places=2,
        max_digits=5,
        help_text="For “A percentage”: 0.01 to 100.",
    )
    reason = forms.CharField(
        max_length=500,
        help_text="Why the customer gets money back; shown in the timeline (DR gets the first 64 characters).",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    # The DR return whose received units this refund pays back, when opened from the returns section.
    for_return = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, order: Order, available: RefundAvailable, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        self.available = available
        limits = [(entry.line, entry.units, "no captured unit is left to refund") for entry in available.lines.values()]
        self.add_line_fields(limits, verb="refunded")

    def clean_for_return(self) -> str:
        dr_return_id = self.cleaned_data.get("for_return") or ""
        if dr_return_id and not self.order.returns.filter(dr_return_id=dr_return_id).exists():
            raise forms.ValidationError(f"Return {dr_return_id} is not a return of this order.")
        return dr_return_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None
        what = cleaned.get("what")
        if what in ("amount", "percent") and cleaned.get(what) is None:
            self.add_error(what, "Enter how much to refund.")
        if what == "units" and not self.errors and not self.chosen():
            raise forms.ValidationError("Enter how many units to refund on at least one line.", code="nothing")
        return cleaned

    def refund(self) -> dict[str, Any]:
        """The keyword arguments of ``refund_plan`` for what the agent chose."""
        data = self.cleaned_data
        what = data["what"]
        arguments: dict[str, Any] = {"reason": data["reason"]}
        if data.get("for_return"):
            arguments["for_return"] = data["for_return"]
        if what == "remaining":
            arguments["percent"] = Decimal("100")
        elif what in ("amount", "percent"):
            arguments[what] = data[what]
        elif what == "units":
            arguments["items"] = [(line.dr_item_id, quantity) for line, quantity in self.chosen()]
        else:
            arguments["type"] = what
        return arguments

    def plan(self) -> RefundPlan:
        return refund_plan(order=self.order, **self.refund())


def refund_view(model_admin: OrderAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    order = model_admin.order_or_404(request, object_id)
    if not (model_admin.has_view_permission(request, order) and can_refund(request)):
        raise PermissionDenied
    user = request.user
    form = RefundForm(
        request.POST if request.method == "POST" else None,
        order=order,
        available=refund_available(order=order),
        initial=_received_units(order, request.GET.get("return", "")),
    )
    return model_admin.form_then_confirm(
        request,
        order,
        cast(Any, form),
        template="refund",
        titles=("Refund", "Confirm the refund"),
        execute=lambda plan: refund_execute(plan=plan, by=cast(Any, user)),
        refusals=(RefundRefused, InvalidRefund),
        success=lambda steps: f"Refund sent to Digital River: {steps}. It shows as refunded once DR pays it back.",
        anchor="refunds",
    )


def _received_units(order: Order, return_pk: str) -> dict[str, Any]:
    """``?return=<pk>``: the form filled with the units the warehouse accepted back and not yet refunded."""
    ret = order.returns.filter(pk=int(return_pk)).first() if return_pk.isdigit() else None
    offer = return_refund_offer(ret=ret) if ret is not None else []
    if ret is None or not offer:
        return {}
    lines = {line.dr_item_id: line for line in order.lines.all()}
    reason = f"Returned: {ret.reason}" if ret.reason else "Returned goods received by the warehouse"
    initial: dict[str, Any] = {"what": "units", "reason": reason, "for_return": ret.dr_return_id}
    initial.update({line_field_name(lines[item_id]): units for item_id, units in offer})
    return initial


def refund_retry_view(model_admin: OrderAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """``?refund=<id>``: the failed or expired refund of the order to send again."""
    order = model_admin.order_or_404(request, object_id)
    if not (model_admin.has_view_permission(request, order) and can_refund(request)):
        raise PermissionDenied
    refund_id = request.GET.get("refund", "")
    refund = Refund.objects.filter(order=order, pk=int(refund_id)).first() if refund_id.isdigit() else None
    if refund is None:
        refusal = "Choose the failed or expired refund to retry in the order's Refunds section."
        plan = RefundPlan(order=order, reason="", asked={}, refusal=refusal)
    else:
        plan = refund_retry_plan(refund=refund)
    if request.method == "POST" and "confirm" in request.POST and not plan.refusal:
        if request.POST.get("plan") == plan.fingerprint:
            try:
                refund_execute(plan=plan, by=cast(Any, request.user))
            except RefundRefused as exc:
                plan = RefundPlan(order=order, reason=plan.reason, asked={}, refusal=str(exc))
            else:
                model_admin.message_user(request, f"Refund sent again: {plan.headline}.", messages.SUCCESS)
                return HttpResponseRedirect(f"{reverse('admin:commerce_order_change', args=[order.pk])}#refunds")
        else:
            model_admin.message_user(
                request, "The order changed since you looked: this is what would happen now.", messages.WARNING
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Retry a refund: order {order.dr_order_id}",
        "opts": model_admin.opts,
        "original": order,
        "refund": refund,
        "plan": plan,
    }
    return TemplateResponse(request, "admin/commerce/order/refund_retry.html", context)


def refund_urls(model_admin: OrderAdmin) -> list[URLPattern]:
    """The two views, for ``OrderAdmin.get_urls``."""
    site = model_admin.admin_site

    def refund(request: HttpRequest, object_id: str) -> HttpResponse:
        return refund_view(model_admin, request, object_id)

    def retry(request: HttpRequest, object_id: str) -> HttpResponse:
        return refund_retry_view(model_admin, request, object_id)

    return [
        path("<path:object_id>/refund/", site.admin_view(refund), name="commerce_order_refund"),
        path("<path:object_id>/refund/retry/", site.admin_view(retry), name="commerce_order_refund_retry"),
    ]
