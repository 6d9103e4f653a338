"""The money side of each line's ledger that commerce alone knows: what refunds paid back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Sum

from .models import Order, OrderLine, Refund, RefundLine


def lines_refunded_recount(*, order: Order, locked_lines: Iterable[OrderLine] | None = None) -> None:
    """Each line's refunded amount: its share of the refunds DR completed, never more than the line's
    captured amount (the database refuses more). A refund that completes before its capture is
    reported holds the excess until the capture arrives and this runs again. ``locked_lines`` are
    the order's lines when the caller has them locked already."""
    paid: dict[int, Decimal] = defaultdict(Decimal)
    for row in (
        RefundLine.objects.filter(refund__order=order, refund__state=Refund.State.SUCCEEDED)
        .values("order_line")
        .annotate(total=Sum("amount"))
    ):
        paid[row["order_line"]] = row["total"] or Decimal("0")
    for line in order.lines.select_for_update() if locked_lines is None else locked_lines:
        refunded = min(paid.get(line.pk, Decimal("0")), line.captured_amount)
        if refunded != line.refunded_amount:
            line.refunded_amount = refunded
            line.save(update_fields=["refunded_amount"])
