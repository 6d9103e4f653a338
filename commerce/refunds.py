"""Customer service gives money back: what can still be refunded, the plan of a refund (or why not),
and the refund queued for DR (``POST /refunds``) with the business change that causes it.

DR's rules, from order-management/returns-and-refunds-1/refunds/issuing-refunds.md (DigitalRiver/GitBook):

* only captured money is refunded, never more than ``availableToRefundAmount`` = captured - (pending +
  completed refunds), at the order and at each item (an item's figure is its captured amount plus tax);
* exactly one of ``amount``, ``percent`` (0.01 to 100) or ``items[]``; ``currency`` must be the order's;
* units of a line: ``items[{itemId, quantity, percent: 100}]`` pays back the product and its tax, not
  its shipping; the shipping: ``{"type": "shipping", "percent": 100}`` (``shippingChoice.amount`` and
  its tax); the tax only in full (``{"type": "tax", "percent": 100}``);
* DR refuses every refund while the order is in dispute (disputes-and-chargebacks.md);
* a 201 is not money back: the money counts as refunded only after ``refund.complete``.

DR has no idempotency key: our ``reference`` travels in ``metadata.refundReference`` and the sender
looks it up in ``GET /refunds?orderId=…`` after a lost answer (commerce/performers.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Sum

from core.plans import plan_fingerprint
from core.types import JSONObject
from digitalriver.services.outbox import instruction_enqueue

from .attention import attention_raise
from .models import Order, OrderLine, Refund, RefundLine, order_subject, quantities_by_item, units_of
from .refund_mirror import CREATE_REFUND, refund_mirror, refund_refused, refund_sent
from .services import lock_order, money

if TYPE_CHECKING:
    from django.contrib.auth.models import User

__all__ = [
    "CREATE_REFUND",
    "InvalidRefund",
    "RefundAvailable",
    "RefundPlan",
    "RefundRefused",
    "refund_available",
    "refund_execute",
    "refund_mirror",
    "refund_plan",
    "refund_refused",
    "refund_request",
    "refund_retry",
    "refund_retry_plan",
    "refund_sent",
]

CENT = Decimal("0.01")
TIMES = "\u00d7"  # the multiplication sign of "1 x Wireless mouse", as the order page writes units
HUNDRED = Decimal("100")
#: DR's order-level types (RefundRequest.type in DR's OpenAPI file); each is refunded in full here.
TYPES = {
    "shipping": Refund.Kind.SHIPPING,
    "tax": Refund.Kind.TAX,
    "duty": Refund.Kind.DUTY,
    "importer_tax": Refund.Kind.IMPORTER_TAX,
}
TYPE_WORDS = {"shipping": "the shipping", "tax": "the tax", "duty": "the duty", "importer_tax": "the importer tax"}
#: DR's ``reason`` is at most 64 characters (RefundRequest.reason); ours is kept whole on the refund.
DR_REASON_LENGTH = 64


class RefundRefused(Exception):
    """The rules forbid it now; the message tells the agent why, with the amounts."""


class InvalidRefund(ValueError):
    """The request itself is malformed; ``field`` names what is wrong."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class _InvalidItems(InvalidRefund):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="items")


# --- what can still be refunded -------------------------------------------------------------------


@dataclass(frozen=True)
class LineAvailable:
    line: OrderLine
    captured_units: int
    held_units: int  # units in refunds succeeded or still open
    held_amount: Decimal
    units: int  # captured units not refunded nor being refunded
    amount: Decimal  # the line's captured amount not refunded nor being refunded


@dataclass(frozen=True)
class RefundAvailable:
    """What can still be refunded now, in the order's currency."""

    order: Order
    currency: str
    captured: Decimal
    held: Decimal  # in refunds succeeded or still open
    amount: Decimal  # for the whole order
    shipping: Decimal
    dr_figure: Decimal | None  # DR's availableToRefundAmount, when DR sent one
    lines: dict[str, LineAvailable] = field(default_factory=dict)  # by DR item id


def _held(refund: Refund) -> Decimal:
    return refund.refunded_amount if refund.state == Refund.State.SUCCEEDED else refund.amount


def refund_available(*, order: Order) -> RefundAvailable:
    holding = list(Refund.objects.filter(order=order, state__in=Refund.HOLDING_STATES))
    held = sum((_held(refund) for refund in holding), Decimal("0"))
    captured = order.captured_amount
    ours = max(captured - held, Decimal("0"))
    dr_figure = money(order.raw["availableToRefundAmount"]) if "availableToRefundAmount" in order.raw else None
    amount = min(ours, dr_figure) if dr_figure is not None and captured else ours
    shipping_held = sum((_held(r) for r in holding if r.kind == Refund.Kind.SHIPPING), Decimal("0"))
    shipping = max(min(_shipping_total(order) - shipping_held, amount), Decimal("0"))
    units: dict[int, int] = defaultdict(int)
    amounts: dict[int, Decimal] = defaultdict(Decimal)
    for row in (
        RefundLine.objects.filter(refund__order=order, refund__state__in=Refund.HOLDING_STATES)
        .values("order_line")
        .annotate(units=Sum("quantity"), total=Sum("amount"))
    ):
        units[row["order_line"]] = row["units"] or 0
        amounts[row["order_line"]] = row["total"] or Decimal("0")
    lines = {
        line.dr_item_id: LineAvailable(
            line=line,
            captured_units=line.captured,
            held_units=units[line.pk],
            held_amount=amounts[line.pk],
            units=max(line.captured - units[line.pk], 0),
            amount=max(min(line.captured_amount - amounts[line.pk], amount), Decimal("0")),
        )
        for line in order.lines.all()
    }
    return RefundAvailable(order, order.currency, captured, held, amount, shipping, dr_figure, lines)


def _shipping_total(order: Order) -> Decimal:
    choice = order.shipping_choice or {}
    if "amount" in choice:
        return money(choice.get("amount")) + money(choice.get("taxAmount"))
    return order.total_shipping


def _type_total(order: Order, kind: str) -> Decimal:
    if kind == "tax":
        return order.total_tax
    if kind == "duty":
        return money(order.raw.get("totalDuty"))
    return money(order.raw.get("totalImporterTax"))


# --- the plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundStep:
    """One line of the confirmation: what happens to the money, and the DR call behind it."""

    what: str  # "Refund 21.59 USD to Visa •••• 1111 for 1 x Wireless mouse", with a times sign
    dr_call: str
    line: OrderLine | None = None


@dataclass(frozen=True)
class RefundPlan:
    """What refunding would do now, or why it cannot: computed without writing anything."""

    order: Order
    reason: str
    asked: dict[str, Any]  # the arguments of refund_plan, to make it again under the lock
    kind: str = ""
    amount: Decimal = Decimal("0")  # the money it moves (DR's to compute for a percent or a type)
    percent: Decimal | None = None
    lines: tuple[tuple[OrderLine, int, Decimal], ...] = ()
    body: JSONObject = field(default_factory=dict)  # POST /refunds without our reference
    steps: tuple[RefundStep, ...] = ()
    refusal: str = ""
    for_return: str = ""
    retry_of: Refund | None = None

    @property
    def fingerprint(self) -> str:
        return plan_fingerprint([self.body, str(self.amount), self.reason, self.for_return, self.retry_of_id])

    @property
    def retry_of_id(self) -> int | None:
        return self.retry_of.pk if self.retry_of is not None else None

    @property
    def headline(self) -> str:
        return self.steps[0].what if self.steps else ""


def _decimal(value: Any, name: str, *, zero: bool = False) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError as exc:
        raise InvalidRefund(f"{name}: {value!r} is not a number", field=name) from exc
    if not number.is_finite():
        raise InvalidRefund(f"{name}: {value!r} is not a number", field=name)
    if number < 0 or (number == 0 and not zero):
        raise InvalidRefund(f"{name}: must be more than 0", field=name)
    if number != number.quantize(CENT):
        raise InvalidRefund(f"{name}: at most 2 decimals", field=name)
    return number.quantize(CENT)


def _json_number(value: Decimal) -> int | float:
    """DR's schema takes numbers: 100 for a whole percent, 12.5 for money."""
    return int(value) if value == value.to_integral_value() else float(value)


def refund_plan(
    *,
    order: Order,
    reason: str,
    amount: Decimal | None = None,
    percent: Decimal | None = None,
    items: list[tuple[str, int]] | None = None,
    type: str | None = None,  # DR's word
    for_return: str = "",
    retry_of: Refund | None = None,
) -> RefundPlan:
    """What refunding would ask of DR now and the money it moves, or the refusal in plain words.
    Writes nothing; raises InvalidRefund (naming the field) when the request is malformed."""
    asked: dict[str, Any] = {"amount": amount, "percent": percent, "items": items, "type": type}
    given = [name for name, value in asked.items() if value is not None]
    if len(given) != 1:
        which = " and ".join(given) if given else "none"
        raise InvalidRefund(
            f"give exactly one of amount, percent, items or type (got {which})", field=given[-1] if given else "amount"
        )
    parsed_amount = _decimal(amount, "amount") if amount is not None else None
    parsed_percent = _decimal(percent, "percent", zero=True) if percent is not None else None
    totals = quantities_by_item(items, error=_InvalidItems) if items is not None else None
    if totals is not None and not totals:
        raise InvalidRefund("items: give at least one item", field="items")
    if type is not None and type not in TYPES:
        raise InvalidRefund(f"type: {type!r} is not one of {', '.join(TYPES)}", field="type")
    base: dict[str, Any] = {
        "order": order,
        "reason": reason,
        "asked": asked,
        "for_return": for_return,
        "retry_of": retry_of,
    }
    refusal = _refusal(order, parsed_percent)
    if refusal:
        return RefundPlan(**base, refusal=refusal)
    available = refund_available(order=order)
    if parsed_amount is not None:
        return _by_amount(base, available, parsed_amount)
    if parsed_percent is not None:
        return _by_percent(base, available, parsed_percent)
    if totals is not None:
        return _by_units(base, available, totals)
    assert type is not None
    return _by_type(base, available, type)


def _refusal(order: Order, percent: Decimal | None) -> str:
    if order.dispute_lock:
        return order.dispute_lock
    if percent is not None and not (CENT <= percent <= HUNDRED):
        return f"A refund percentage is between 0.01 and 100; you asked {percent.normalize():f}%."
    if order.captured_amount <= 0:
        return (
            f"Nothing of order {order.dr_order_id} is captured yet: Digital River refunds only money it has"
            " captured. Cancel the units that have not shipped instead."
        )
    return ""


def _money(value: Decimal, currency: str) -> str:
    return f"{value.quantize(CENT)} {currency}"


def _to(order: Order) -> str:
    return order.payment_method or "the customer's payment method"


def _nothing_left(available: RefundAvailable) -> str:
    order = available.order
    return (
        f"Nothing of order {order.dr_order_id} can still be refunded: {_money(available.captured, order.currency)}"
        f" captured, {_money(available.held, order.currency)} already refunded or being refunded."
    )


def _body(order: Order, reason: str, **what: Any) -> JSONObject:
    body: JSONObject = {"orderId": order.dr_order_id, "currency": order.currency, **what}
    if reason:
        body["reason"] = reason[:DR_REASON_LENGTH]
    return body


def _by_amount(base: dict[str, Any], available: RefundAvailable, amount: Decimal) -> RefundPlan:
    order, currency = available.order, available.currency
    if available.amount <= 0:
        return RefundPlan(**base, refusal=_nothing_left(available))
    if amount > available.amount:
        return RefundPlan(
            **base,
            refusal=f"Only {_money(available.amount, currency)} of order {order.dr_order_id} can still be refunded;"
            f" you asked {_money(amount, currency)}.",
        )
    step = RefundStep(
        f"Refund {_money(amount, currency)} to {_to(order)} on order {order.dr_order_id}",
        "POST /refunds with amount: DR shares it over the order's products, shipping and taxes.",
    )
    body = _body(order, base["reason"], amount=_json_number(amount))
    return RefundPlan(**base, kind=Refund.Kind.AMOUNT, amount=amount, body=body, steps=(step,))


def _by_percent(base: dict[str, Any], available: RefundAvailable, percent: Decimal) -> RefundPlan:
    order, currency = available.order, available.currency
    if available.amount <= 0:
        return RefundPlan(**base, refusal=_nothing_left(available))
    amount = (available.amount * percent / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
    step = RefundStep(
        f"Refund {_money(amount, currency)} ({percent.normalize():f}% of the {_money(available.amount, currency)}"
        f" still refundable) to {_to(order)} on order {order.dr_order_id}",
        "POST /refunds with percent: DR refunds that share of what is still refundable.",
    )
    body = _body(order, base["reason"], percent=_json_number(percent))
    return RefundPlan(**base, kind=Refund.Kind.PERCENT, amount=amount, percent=percent, body=body, steps=(step,))


def _by_units(base: dict[str, Any], available: RefundAvailable, totals: dict[str, int]) -> RefundPlan:
    order, currency = available.order, available.currency
    unknown = [item_id for item_id in totals if item_id not in available.lines]
    if unknown:
        return RefundPlan(**base, refusal=f"Order {order.dr_order_id} has no item {unknown[0]}.")
    refusals, lines = [], []
    for item_id, quantity in totals.items():
        entry = available.lines[item_id]
        if quantity > entry.units:
            refusals.append(
                f"{entry.line.label}: asked {quantity}, {entry.units} of {entry.captured_units} captured"
                f" unit{'' if entry.captured_units == 1 else 's'} can still be refunded"
                + (f" ({entry.held_units} already refunded or being refunded)" if entry.held_units else "")
            )
            continue
        value = entry.line.price_of(quantity)
        lines.append((entry.line, quantity, min(value, entry.amount)))
    if refusals:
        return RefundPlan(**base, refusal="Cannot refund that many units. " + "; ".join(refusals) + ".")
    amount = sum((value for _, _, value in lines), Decimal("0"))
    if amount > available.amount:
        return RefundPlan(
            **base,
            refusal=f"Only {_money(available.amount, currency)} of order {order.dr_order_id} can still be refunded;"
            f" these units come to {_money(amount, currency)}.",
        )
    goods = ", ".join(f"{quantity} {TIMES} {line.label}" for line, quantity, _ in lines)
    steps = (
        RefundStep(
            f"Refund {_money(amount, currency)} to {_to(order)} for {goods}",
            "POST /refunds with items[{itemId, quantity, percent: 100}]: DR pays back the product and its tax,"
            " not its shipping.",
        ),
    )
    body = _body(
        order,
        base["reason"],
        items=[{"itemId": line.dr_item_id, "quantity": quantity, "percent": 100} for line, quantity, _ in lines],
    )
    return RefundPlan(**base, kind=Refund.Kind.UNITS, amount=amount, lines=tuple(lines), body=body, steps=steps)


def _by_type(base: dict[str, Any], available: RefundAvailable, kind: str) -> RefundPlan:
    order, currency = available.order, available.currency
    words = TYPE_WORDS[kind]
    if kind == "shipping":
        amount = available.shipping
    else:
        held = Refund.objects.filter(order=order, kind=TYPES[kind], state__in=Refund.HOLDING_STATES)
        amount = max(
            min(_type_total(order, kind) - sum((_held(r) for r in held), Decimal("0")), available.amount), Decimal("0")
        )
    if amount <= 0:
        return RefundPlan(**base, refusal=f"Nothing of {words} of order {order.dr_order_id} is left to refund.")
    about = "" if kind == "shipping" else "about "
    step = RefundStep(
        f"Refund {about}{_money(Decimal(amount), currency)} to {_to(order)} for {words} of order {order.dr_order_id}",
        f'POST /refunds with type "{kind}" and percent 100: DR refunds what is left of {words}'
        + (", with its tax." if kind == "shipping" else "."),
    )
    body = _body(order, base["reason"], type=kind, percent=100)
    return RefundPlan(**base, kind=TYPES[kind], amount=Decimal(amount), percent=HUNDRED, body=body, steps=(step,))


# --- execute -------------------------------------------------------------------------------------


def refund_execute(*, plan: RefundPlan, by: User | None = None) -> Refund:
    """Queue the plan's refund with the Refund that follows it, or raise RefundRefused.

    The plan is made again under the order's lock: if it changed since it was shown (another agent
    refunded, a capture or a refund completed), nothing is queued and the agent is told to look again.
    """
    if plan.refusal:
        raise RefundRefused(plan.refusal)
    with transaction.atomic():
        order = lock_order(order=plan.order)
        now = refund_plan(
            order=order, reason=plan.reason, for_return=plan.for_return, retry_of=plan.retry_of, **plan.asked
        )
        if now.refusal:
            raise RefundRefused(now.refusal)
        if now.fingerprint != plan.fingerprint:
            raise RefundRefused(f"Order {order.dr_order_id} changed since this refund was shown; look at it again.")
        reference = uuid.uuid4()
        body = {**now.body, "metadata": {"refundReference": str(reference)}}
        instruction = instruction_enqueue(kind=CREATE_REFUND, subject=order_subject(order.dr_order_id), payload=body)
        refund = Refund.objects.create(
            order=order,
            reference=reference,
            kind=now.kind,
            currency=order.currency,
            amount=now.amount,
            percent=now.percent,
            reason=now.reason,
            for_return=now.for_return,
            retry_of=now.retry_of,
            requested_by=by if by is not None and by.is_authenticated else None,
            instruction=instruction,
            request=body,
        )
        RefundLine.objects.bulk_create(
            RefundLine(refund=refund, order_line=line, quantity=quantity, amount=value)
            for line, quantity, value in now.lines
        )
    return refund


def refund_retry_plan(*, refund: Refund) -> RefundPlan:
    """A new refund of the same money as a failed or expired one (DR: retry with a new POST /refunds)."""
    base: dict[str, Any] = {"order": refund.order, "reason": refund.reason, "retry_of": refund}
    if refund.state not in (Refund.State.FAILED, Refund.State.EXPIRED):
        return RefundPlan(
            **base,
            asked={},
            refusal=f"Only a failed or expired refund is retried; this one is {refund.get_state_display().lower()}.",
        )
    again = refund.retries.filter(state__in=Refund.HOLDING_STATES).first()
    if again is not None:
        return RefundPlan(
            **base, asked={}, refusal=f"This refund was already retried ({again.get_state_display().lower()})."
        )
    lines = list(refund.lines.select_related("order_line"))
    if lines:
        items = [(line.order_line.dr_item_id, line.quantity) for line in lines]
        return refund_plan(
            order=refund.order, reason=refund.reason, items=items, for_return=refund.for_return, retry_of=refund
        )
    kind = next((dr_type for dr_type, ours in TYPES.items() if ours == refund.kind), None)
    if kind is not None:
        return refund_plan(order=refund.order, reason=refund.reason, type=kind, retry_of=refund)
    return refund_plan(order=refund.order, reason=refund.reason, amount=refund.amount, retry_of=refund)


def refund_retry(*, refund: Refund, by: User | None = None) -> Refund:
    return refund_execute(plan=refund_retry_plan(refund=refund), by=by)


def refund_request(
    *, order: Order, items: list[tuple[str, int]], reason: str, for_return: str = "", by: User | None = None
) -> Refund | None:
    """Refund the units of a return (after ``fulfillment_return.accepted``): plan, then execute.

    Once per return: a refund already made for ``for_return`` is returned as it is. When the rules
    forbid it (a dispute, nothing captured), nothing is sent and the order gets a refund_failed item
    with the reason, for a person; None is returned.
    """
    with transaction.atomic():
        order = lock_order(order=order)
        if for_return:
            done = Refund.objects.filter(order=order, for_return=for_return).exclude(state=Refund.State.REFUSED)
            existing = done.order_by("-created_at").first()
            if existing is not None:
                return existing
        plan = refund_plan(order=order, reason=reason, items=items, for_return=for_return)
        if plan.refusal:
            attention_raise(
                order=order,
                kind="refund_failed",
                reason=f"The returned units were not refunded: {plan.refusal}",
                source=f"return:{for_return}" if for_return else "refund_request",
            )
            return None
        return refund_execute(plan=plan, by=by)


def units_words(refund: Refund) -> str:
    """What a refund pays back, in words: "1 unit of Wireless mouse", "the shipping", "part of the order"."""
    lines = list(refund.lines.select_related("order_line"))
    if lines:
        return ", ".join(units_of(line.quantity, line.order_line.label) for line in lines)
    for dr_type, ours in TYPES.items():
        if refund.kind == ours:
            return TYPE_WORDS[dr_type]
    return f"order {refund.order.dr_order_id}"
