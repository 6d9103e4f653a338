"""The order page's returns: the section that lists them, and customer service's two actions, "Start
a return" and "Record return received", each a form, then a confirmation in plain words, then the
service (fulfillment.returns). Wired into OrderAdmin.get_urls; the rules live in the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from commerce.models import Order
from fulfillment.models import Return
from fulfillment.returns import (
    REASON_LIMIT,
    InvalidReturn,
    ReceiptPlan,
    ReturnPlan,
    ReturnRefused,
    return_execute,
    return_plan,
    return_received_execute,
    return_received_plan,
    return_refund_offer,
    returnable_units,
    still_to_receive,
)

from .forms import PerLineQuantitiesForm
from .selectors import RETURNS

if TYPE_CHECKING:
    from .admin import OrderAdmin

START_RETURN_PERMISSION = "commerce.start_return"


def can_start_return(order_admin: OrderAdmin, request: HttpRequest, order: Order | None = None) -> bool:
    return order_admin.has_view_permission(request, order) and request.user.has_perm(START_RETURN_PERMISSION)


# --- the section on the order page ------------------------------------------------------------------


@dataclass(frozen=True)
class ShownReturn:
    ret: Return
    who: str  # "asked by the customer" / "a refused parcel"
    address: list[str]
    can_record_received: bool
    can_refund_received: bool = False  # received units not yet refunded, and the agent may refund


def receivable(ret: Return) -> bool:
    return ret.api == Return.Api.RETURNS and ret.state == Return.State.CREATED and bool(ret.dr_return_id)


def returns_context(order_admin: OrderAdmin, request: HttpRequest, order: Order) -> dict[str, Any]:
    """What the order page's returns section shows (templates/admin/commerce/order/returns.html)."""
    from .admin import address_lines
    from .refunds import can_refund

    allowed = can_start_return(order_admin, request, order)
    refunds_allowed = can_refund(request)
    shown = [
        ShownReturn(
            ret=ret,
            who="a refused parcel the warehouse sends back"
            if ret.type == Return.Type.WAREHOUSE
            else "asked by the customer",
            address=address_lines(ret.location) if ret.location else [],
            can_record_received=allowed and receivable(ret),
            can_refund_received=refunds_allowed and bool(return_refund_offer(ret=ret)),
        )
        for ret in Order.objects.prefetch_related(RETURNS).get(pk=order.pk).returns.all()
    ]
    return {"returns": shown, "can_start_return": allowed and order.state in RETURNABLE_STATES}


RETURNABLE_STATES = (Order.State.ACCEPTED, Order.State.FULFILLED, Order.State.COMPLETE)


# --- the forms ----------------------------------------------------------------------------------------


class StartReturnForm(PerLineQuantitiesForm):
    reason = forms.CharField(
        max_length=REASON_LIMIT,
        help_text="Why the customer sends the goods back; sent to DR and shown in the timeline.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        limits = [(entry.line, entry.quantity, entry.why_not) for entry in returnable_units(order=order).values()]
        self.add_line_fields(limits, verb="returned")

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if not self.errors and not self.chosen():
            raise forms.ValidationError("Enter how many units come back on at least one line.", code="nothing")
        return cleaned

    def plan(self) -> ReturnPlan:
        items = [(line.dr_item_id, quantity) for line, quantity in self.chosen()]
        return return_plan(order=self.order, items=items, reason=self.cleaned_data["reason"])


class ReturnReceivedForm(PerLineQuantitiesForm):
    def __init__(self, *args: Any, ret: Return, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ret = ret
        left = still_to_receive(ret)
        limits = [
            (line.order_line, left[line.pk], "" if left[line.pk] else "every unit is already received")
            for line in ret.lines.select_related("order_line").order_by("pk")
        ]
        self.add_line_fields(limits, verb="received")

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if not self.errors and not self.chosen():
            raise forms.ValidationError("Enter how many units arrived on at least one line.", code="nothing")
        return cleaned

    def plan(self) -> ReceiptPlan:
        items = [(line.dr_item_id, quantity) for line, quantity in self.chosen()]
        return return_received_plan(ret=self.ret, items=items)


# --- the views (OrderAdmin.get_urls) -------------------------------------------------------------


def start_return_view(order_admin: OrderAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    order = order_admin.order_or_404(request, object_id)
    if not can_start_return(order_admin, request, order):
        raise PermissionDenied
    user = request.user
    assert user.is_authenticated  # the admin's views admit signed-in staff only
    form = StartReturnForm(request.POST if request.method == "POST" else None, order=order)
    return order_admin.form_then_confirm(
        request,
        order,
        cast(Any, form),
        template="start_return",
        titles=("Start a return", "Confirm the return"),
        execute=lambda plan: return_execute(plan=plan, by=cast(Any, user)),
        refusals=(ReturnRefused, InvalidReturn),
        success=lambda steps: f"Return started: {steps}. Its progress shows under Returns and in the timeline.",
        anchor="returns",
    )


def return_received_view(order_admin: OrderAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Which return: ``?return=<id>``, or the only one of the order waiting for goods from our partner."""
    order = order_admin.order_or_404(request, object_id)
    if not can_start_return(order_admin, request, order):
        raise PermissionDenied
    wanted = request.GET.get("return", "")
    candidates = [ret for ret in order.returns.all() if receivable(ret) or str(ret.pk) == wanted]
    ret = next((ret for ret in candidates if str(ret.pk) == wanted), None)
    if ret is None and not wanted and len(candidates) == 1:
        ret = candidates[0]
    if ret is None:
        return _refused(
            order_admin,
            request,
            order,
            "Choose the return under Returns on the order page: only a return through our own partner, "
            "confirmed by DR, can be recorded as received here."
            if candidates
            else "No return of this order is waiting for goods from our partner.",
        )
    refusal = return_received_plan(ret=ret).refusal
    if refusal:
        return _refused(order_admin, request, order, refusal)
    form = ReturnReceivedForm(request.POST if request.method == "POST" else None, ret=ret)
    return order_admin.form_then_confirm(
        request,
        order,
        cast(Any, form),
        template="return_received",
        titles=("Record return received", "Confirm the goods received"),
        execute=lambda plan: return_received_execute(plan=plan),
        refusals=(ReturnRefused, InvalidReturn),
        success=lambda steps: f"Receipt sent to DR: {steps}.",
        anchor="returns",
    )


def _refused(order_admin: OrderAdmin, request: HttpRequest, order: Order, why: str) -> HttpResponse:
    """The action's own page saying why nothing can be recorded (not a redirect: the reason stays)."""
    empty = PerLineQuantitiesForm(data={})
    empty.add_line_fields([], verb="received")
    empty.is_valid()
    empty.add_error(None, why)
    return order_admin.render_action(request, order, "return_received", empty, title="Record return received")
