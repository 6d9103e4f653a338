"""The order page's two actions as forms: customer service cancels units, or records a shipment of
third-party and digital lines. Each form asks its service for the plan (what will happen to every
line and which call to Digital River it causes, or why not), for the agent to confirm; confirming
executes that plan. The rules live in the services, never here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms

from commerce.models import Order, OrderLine
from fulfillment.cancellations import Cancellable, CancellationPlan, cancellation_plan, whole_order_refusal
from fulfillment.shipments import SELF_FULFILLED, TRACKING_LIMITS, ShipmentPlan, shipment_plan, shippable_units


def line_field_name(line: OrderLine) -> str:
    return f"line_{line.pk}"


class PerLineQuantitiesForm(forms.Form):
    """A number input per order line, 0 up to what the rules allow for that line now."""

    def add_line_fields(self, limits: list[tuple[OrderLine, int, str]], verb: str) -> None:
        """``limits``: (line, most units allowed, why none are allowed when the most is 0)."""
        self.limits = limits
        for line, most, why_not in limits:
            self.fields[line_field_name(line)] = forms.IntegerField(
                label=line.name or line.dr_sku_id,
                min_value=0,
                max_value=most,
                initial=0,
                required=False,
                help_text=why_not if not most else f"up to {most}",
                error_messages={
                    "max_value": f"At most {most} unit{'' if most == 1 else 's'} of this line can be {verb} now."
                    if most
                    else f"None of this line can be {verb} now: {why_not}."
                },
                widget=forms.NumberInput(attrs={"min": 0, "max": most, "class": "vIntegerField"}),
            )

    def rows(self) -> list[tuple[OrderLine, int, str, forms.BoundField]]:
        """(line, most, why not, input) for the template's table."""
        return [(line, most, why_not, self[line_field_name(line)]) for line, most, why_not in self.limits]

    def other_fields(self) -> list[forms.BoundField]:
        """The inputs that are not per line (reason, tracking), in declaration order."""
        per_line = {line_field_name(line) for line, _, _ in self.limits}
        return [field for field in self if field.name not in per_line]

    def chosen(self) -> list[tuple[OrderLine, int]]:
        """(line, units) for every line given a quantity above zero."""
        return [
            (line, self.cleaned_data.get(line_field_name(line)) or 0)
            for line, _, _ in self.limits
            if self.cleaned_data.get(line_field_name(line))
        ]


class CancelItemsForm(PerLineQuantitiesForm):
    cancel_all = forms.BooleanField(
        label="Cancel the whole order",
        required=False,
        help_text="Every unit that has not shipped; refused if any unit already shipped.",
    )
    reason = forms.CharField(
        max_length=500,
        help_text="Why the customer no longer wants the goods; sent to DR and shown in the timeline.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def __init__(self, *args: Any, order: Order, cancellable: dict[int, Cancellable], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        self.add_line_fields(
            [(entry.line, entry.quantity, entry.why_not) for entry in cancellable.values()], verb="cancelled"
        )
        # Offer the whole order only while the rules allow it (nothing shipped, nothing blocked).
        self.whole_order_refusal = whole_order_refusal(order=order, cancellable=cancellable)
        if self.whole_order_refusal:
            del self.fields["cancel_all"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        if self.errors:
            return cleaned
        cleaned.setdefault("cancel_all", False)
        if cleaned.get("cancel_all") and self.chosen():
            raise forms.ValidationError(
                "Choose either the whole order or some units of some lines, not both.", code="both"
            )
        if not cleaned.get("cancel_all") and not self.chosen():
            raise forms.ValidationError(
                "Enter how many units to cancel on at least one line, or choose the whole order.", code="nothing"
            )
        return cleaned

    def cancellation(self) -> dict[str, Any]:
        """The keyword arguments of ``cancellation_plan`` for what the agent chose."""
        reason = self.cleaned_data["reason"]
        if self.cleaned_data["cancel_all"]:
            return {"cancel_all": True, "reason": reason}
        return {"items": [(line.dr_item_id, quantity) for line, quantity in self.chosen()], "reason": reason}

    def plan(self) -> CancellationPlan:
        """What the service would do with what the agent chose, or why it cannot."""
        return cancellation_plan(order=self.order, **self.cancellation())


def self_fulfilled(lines: Iterable[OrderLine]) -> list[OrderLine]:
    return [line for line in lines if line.fulfillment_model in SELF_FULFILLED]


class RecordShipmentForm(PerLineQuantitiesForm):
    tracking_company = forms.CharField(
        max_length=TRACKING_LIMITS["tracking_company"], required=False, help_text="The carrier, e.g. UPS."
    )
    tracking_number = forms.CharField(max_length=TRACKING_LIMITS["tracking_number"], required=False)
    tracking_url = forms.URLField(
        max_length=TRACKING_LIMITS["tracking_url"],
        required=False,
        assume_scheme="https",
        help_text="Where the customer can follow the parcel.",
    )

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        limits = [(line, *shippable_units(order=order, line=line)) for line in self_fulfilled(order.lines.all())]
        self.add_line_fields(limits, verb="recorded as shipped")

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if not self.errors and not self.chosen():
            raise forms.ValidationError("Enter how many units shipped on at least one line.", code="nothing")
        return cleaned

    def shipment(self) -> dict[str, Any]:
        """The keyword arguments of ``shipment_plan`` for what the agent entered."""
        return {
            "items": [(line.dr_item_id, quantity) for line, quantity in self.chosen()],
            "tracking_company": self.cleaned_data["tracking_company"],
            "tracking_number": self.cleaned_data["tracking_number"],
            "tracking_url": self.cleaned_data["tracking_url"],
        }

    def plan(self) -> ShipmentPlan:
        """What the service would record and capture, or why it cannot."""
        return shipment_plan(order=self.order, **self.shipment())
