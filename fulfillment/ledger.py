"""Each order line's ledger, counted again from the records that prove it.

Units captured are those of fulfillments whose capture DR reported complete, matched through
``captures[].fulfillmentId`` (DR's charge object, `order-management/orders/payment-charges` in
DigitalRiver/GitBook): a line never claims money that did not move. Returned units are those a
return accepted back. Everything here runs under the order's lock, after the change that moved a
counter, and is idempotent: counting twice gives the same ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal

from django.db.models import Q, Sum

from commerce.attention import attention_clear
from commerce.ledger import lines_refunded_recount
from commerce.models import ChargeOperation, Order, OrderLine

from .models import DrFulfillment, Return, ReturnLine

CENT = Decimal("0.01")


def ledger_recount(*, order: Order, locked_lines: Iterable[OrderLine] | None = None) -> None:
    """``locked_lines``: all the order's lines, when the caller has read them with their lock."""
    if locked_lines is None:
        locked_lines = order.lines.select_for_update()
    lines = {line.dr_item_id: line for line in locked_lines}
    captured, failed, money = _captures_by_line(order, lines)
    returned, requested = _returns_by_line(order)
    for line in lines.values():
        new: dict[str, int | Decimal] = {
            "captured": min(captured[line.pk], line.fulfilled),
            "capture_failed": min(failed[line.pk], line.fulfilled),
            "captured_amount": money[line.pk],
            "returned": min(returned[line.pk], line.fulfilled),
            "return_requested": min(requested[line.pk], line.quantity),
        }
        # Refunds are counted again below; never let the line hold more refunded than captured.
        new["refunded_amount"] = min(line.refunded_amount, money[line.pk])
        changed = [field for field, value in new.items() if getattr(line, field) != value]
        for field in changed:
            setattr(line, field, new[field])
        if changed:
            line.save(update_fields=changed)
    lines_refunded_recount(order=order, locked_lines=lines.values())
    if order.capture_failed and any(captured.values()) and not any(failed.values()):
        attention_clear(order=order, kind="capture_failed", because="DR captured the payment after all.")


def _captures_by_line(
    order: Order, lines: dict[str, OrderLine]
) -> tuple[dict[int, int], dict[int, int], dict[int, Decimal]]:
    captured: dict[int, int] = defaultdict(int)
    failed: dict[int, int] = defaultdict(int)
    money: dict[int, Decimal] = defaultdict(Decimal)
    operations = list(ChargeOperation.objects.filter(charge__order=order, kind=ChargeOperation.Kind.CAPTURE))
    if not operations:  # an order not captured yet: nothing to match
        return captured, failed, money
    records = {record.dr_fulfillment_id: record for record in DrFulfillment.objects.filter(order=order)}
    by_fulfillment: dict[str, list[ChargeOperation]] = defaultdict(list)
    for operation in operations:
        by_fulfillment[operation.fulfillment_id].append(operation)
    unmatched = Decimal("0")
    for fulfillment_id, ops in by_fulfillment.items():
        complete = sum((op.amount for op in ops if op.state == "complete"), Decimal("0"))
        record = records.get(fulfillment_id) if fulfillment_id else None
        if record is None:
            unmatched += complete
            continue
        units = [
            (lines[str(item.get("itemId"))], int(item.get("quantity") or 0))
            for item in record.items
            if str(item.get("itemId")) in lines and int(item.get("quantity") or 0) > 0
        ]
        if complete:
            for (line, quantity), share in zip(units, _split(complete, units), strict=True):
                captured[line.pk] += quantity
                money[line.pk] += share
        elif any(op.state == "failed" for op in ops):
            for line, quantity in units:
                failed[line.pk] += quantity
    if unmatched:
        _attribute_unmatched(unmatched, lines, captured, money)
    return captured, failed, money


def _split(amount: Decimal, units: list[tuple[OrderLine, int]]) -> list[Decimal]:
    """Each line's share of a capture: what its captured units cost (product and tax). What the
    capture holds beyond them (the shipping) stays on the order, not on a line. A capture worth less
    than the goods is shared in proportion to their value, the cents rounding leaves going to the
    last line, so the shares add up to the capture exactly."""
    weights = [line.price_of(quantity) for line, quantity in units]
    total = sum(weights, Decimal("0"))
    if not units:
        return []
    if total <= amount:
        return weights
    if total == 0:
        return [Decimal("0")] * (len(units) - 1) + [amount]
    shares = [(amount * weight / total).quantize(CENT, rounding=ROUND_DOWN) for weight in weights[:-1]]
    return [*shares, amount - sum(shares, Decimal("0"))]


def _attribute_unmatched(
    amount: Decimal, lines: dict[str, OrderLine], captured: dict[int, int], money: dict[int, Decimal]
) -> None:
    """Captures that name no fulfillment we know (DR's older charge objects carry no
    ``fulfillmentId``): whole units of fulfilled lines, in line order, as far as the money goes.
    What does not buy a whole unit stays on the order, not on a line (tests/fulfillment/test_ledger.py)."""
    for line in lines.values():
        open_units = line.fulfilled - captured[line.pk]
        price = line.price_of(1)
        if open_units <= 0 or price <= 0:
            continue
        units = min(open_units, int(amount // price))
        if units:
            captured[line.pk] += units
            money[line.pk] += price * units
            amount -= price * units


def _returns_by_line(order: Order) -> tuple[dict[int, int], dict[int, int]]:
    returned: dict[int, int] = defaultdict(int)
    requested: dict[int, int] = defaultdict(int)
    rows = (
        ReturnLine.objects.filter(return_request__order=order)
        .exclude(return_request__state=Return.State.FAILED)
        .values("order_line")
        .annotate(
            accepted=Sum("quantity_accepted"),
            open=Sum(
                "quantity",
                filter=Q(return_request__state__in=Return.OPEN_STATES),
            ),
            open_accepted=Sum("quantity_accepted", filter=Q(return_request__state__in=Return.OPEN_STATES)),
        )
    )
    for row in rows:
        returned[row["order_line"]] = row["accepted"] or 0
        requested[row["order_line"]] = (row["open"] or 0) - (row["open_accepted"] or 0)
    return returned, requested
