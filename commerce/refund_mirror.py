"""DR's refunds mirrored: the answer to our ``POST /refunds``, the ``refund.*`` events, and refunds DR
made by itself (a third-party return fully received). Order-independent and idempotent: a refund
never moves backwards (a late ``refund.pending`` after ``refund.complete`` changes nothing), and the
money counts as refunded only once DR says ``succeeded``
(order-management/returns-and-refunds-1/refunds/issuing-refunds.md#handling-refund-state-changes).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils import timezone
from django.utils.formats import date_format

from core.types import JSONObject

from .attention import attention_clear, attention_follow, attention_raise
from .ledger import lines_refunded_recount
from .models import Order, Refund, RefundLine
from .services import dr_time, lock_order, money, order_locked

if TYPE_CHECKING:
    from digitalriver.models import Instruction

#: The outbox kind of ``POST /refunds`` (commerce/performers.py sends it).
CREATE_REFUND = "commerce.create_refund"

State = Refund.State
TERMINAL = (State.SUCCEEDED, State.FAILED, State.EXPIRED, State.REFUSED)
DR_TYPES = {"shipping": Refund.Kind.SHIPPING, "tax": Refund.Kind.TAX, "duty": Refund.Kind.DUTY}
DR_TYPES["importer_tax"] = Refund.Kind.IMPORTER_TAX


def refund_mirror(*, data: JSONObject, event_type: str | None = None) -> Refund:
    """DR's refund object (a ``refund.*`` event's, or one of ``GET /refunds``): ours found by
    ``metadata.refundReference`` or DR's id, else recorded as DR's own; its state followed."""
    with order_locked(dr_order_id=str(data.get("orderId") or "")) as order:
        return refund_follow(order=order, data=data, source=event_type or "DR")


def refund_follow(*, order: Order, data: JSONObject, refund: Refund | None = None, source: str = "DR") -> Refund:
    """Inside the caller's transaction, after the order's lock: no I/O."""
    refund = refund or _ours(order, data) or _dr_own(order, data)
    _follow_state(refund, data, source)
    _allocate_items(refund, data)
    lines_refunded_recount(order=order)
    _order_amounts_follow_refunds(order)
    _attention_follows_refunds(order, refund)
    return refund


def _reference(data: JSONObject) -> uuid.UUID | None:
    value = (data.get("metadata") or {}).get("refundReference")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _ours(order: Order, data: JSONObject) -> Refund | None:
    refunds = Refund.objects.select_for_update().filter(order=order)
    reference = _reference(data)
    if reference is not None:
        found = refunds.filter(reference=reference).first()
        if found is not None:
            return found
    if data.get("id"):
        found = refunds.filter(dr_refund_id=str(data["id"])).first()
        if found is not None:
            return found
    if reference is None and data.get("amount") is not None:
        # DR's event can come before the answer to our POST is recorded, without our reference: the
        # oldest refund we asked of this amount that DR has not numbered yet is the one it is about.
        waiting = refunds.filter(dr_refund_id="", initiated_by_dr=False, state__in=Refund.OPEN_STATES)
        return waiting.filter(amount=money(data["amount"])).order_by("created_at", "pk").first()
    return None


def _dr_own(order: Order, data: JSONObject) -> Refund:
    """A refund DR made by itself (a received third-party return), or one made in DR's dashboard."""
    items = [item for item in data.get("items") or [] if not item.get("type")]
    kind = DR_TYPES.get(str(data.get("type") or ""), Refund.Kind.UNITS if items else Refund.Kind.AMOUNT)
    asked = data.get("amount")
    if asked is None:
        asked = sum((money(item.get("amount")) for item in data.get("items") or []), Decimal("0"))
    return Refund.objects.create(
        order=order,
        dr_refund_id=str(data.get("id") or ""),
        kind=kind,
        currency=str(data.get("currency") or order.currency),
        amount=money(asked),
        reason=str(data.get("reason") or ""),
        initiated_by_dr=True,
        raw=data,
    )


def _follow_state(refund: Refund, data: JSONObject, source: str) -> None:
    updated_at = dr_time(data.get("updatedTime"))
    if data.get("id") and not refund.dr_refund_id:
        refund.dr_refund_id = str(data["id"])
    if data.get("amount") is not None and refund.state not in TERMINAL:
        refund.amount = money(data["amount"])
    if refund.state in TERMINAL:
        refund.save()
        return  # never backwards: a late or repeated event changes nothing
    older = refund.dr_updated_at is not None and updated_at is not None and updated_at < refund.dr_updated_at
    state = str(data.get("state") or "")
    description = f"{source}: {state}" if state else source
    if state == "succeeded":
        refund.mark_succeeded(description=description)
        refund.refunded_amount = money(data.get("refundedAmount"))
    elif state == "failed":
        refund.mark_failed(description=description)
        refund.failure_reason = str(data.get("failureReason") or "Digital River gave no reason.")
    elif state == "expired":
        refund.mark_expired(description=description)
        refund.failure_reason = refund.failure_reason or "The customer gave no bank details before the link expired."
    elif state == "pending_information" and not older and refund.state != State.PENDING_INFORMATION:
        refund.mark_pending_information(description=description)
    elif state == "pending" and refund.state == State.REQUESTED:
        refund.mark_pending(description=description)
    elif state == "pending" and refund.state == State.PENDING_INFORMATION and updated_at and not older:
        refund.mark_pending(description=f"{description} (bank details given)")
    token = data.get("tokenInformation") or {}
    expires = dr_time(token.get("expiresTime") or data.get("expiresTime"))
    if expires is not None:
        refund.token_expires_at = expires
    refund.dr_updated_at = max(filter(None, (refund.dr_updated_at, updated_at)), default=None)
    refund.raw = {key: value for key, value in data.items() if key != "tokenInformation"}
    refund.save()


def _allocate_items(refund: Refund, data: JSONObject) -> None:
    """DR's item amounts (product refunds only) become the refund's lines: what each line got back."""
    lines = {line.dr_item_id: line for line in refund.order.lines.all()}
    existing = {line.order_line_id: line for line in refund.lines.all()}
    for item in data.get("items") or []:
        line = lines.get(str(item.get("itemId")))
        if line is None or item.get("type"):
            continue
        paid = money(item.get("refundedAmount"))
        amount = paid if refund.state == State.SUCCEEDED and paid else money(item.get("amount"))
        quantity = int(item.get("quantity") or 0)
        ours = existing.get(line.pk)
        if ours is None:
            RefundLine.objects.create(refund=refund, order_line=line, quantity=quantity, amount=amount)
        elif (ours.amount, ours.quantity) != (amount, quantity or ours.quantity) and amount:
            ours.amount, ours.quantity = amount, quantity or ours.quantity
            ours.save(update_fields=["amount", "quantity"])


def _order_amounts_follow_refunds(order: Order) -> None:
    """The order's refunded amount is at least what its completed refunds paid, until DR's next
    order event brings DR's own figures (which may include refunds we have not seen yet)."""
    paid = sum((refund.refunded_amount for refund in order.refunds.filter(state=State.SUCCEEDED)), Decimal("0"))
    if paid > order.refunded_amount:
        order.refunded_amount = paid
        order.available_to_refund_amount = max(
            min(order.available_to_refund_amount, order.captured_amount - paid), Decimal("0")
        )
        order.save(update_fields=["refunded_amount", "available_to_refund_amount", "updated_at"])


def when(moment: object) -> str:
    return date_format(timezone.localtime(moment), "j M Y") if moment else "a date DR has not given"  # type: ignore[arg-type]


def _attention_follows_refunds(order: Order, refund: Refund) -> None:
    money_words = f"{refund.amount} {refund.currency}"
    if refund.state == State.FAILED:
        attention_raise(
            order=order,
            kind="refund_failed",
            reason=f"A refund of {money_words} failed: {refund.failure_reason}",
            source=f"refund:{refund.dr_refund_id or refund.pk}",
        )
    elif refund.state == State.EXPIRED:
        attention_raise(
            order=order,
            kind="refund_failed",
            reason=f"A refund of {money_words} expired: the customer gave no bank details by"
            f" {when(refund.token_expires_at)}.",
            source=f"refund:{refund.dr_refund_id or refund.pk}",
        )
    elif refund.state == State.SUCCEEDED and order.refund_failed:
        newer_failure = order.refunds.filter(
            state__in=(State.FAILED, State.EXPIRED), created_at__gt=refund.created_at
        ).exists()
        if not newer_failure:
            attention_clear(order=order, kind="refund_failed", because=f"A refund of {money_words} succeeded.")
    waiting = order.refunds.filter(state=State.PENDING_INFORMATION).order_by("token_expires_at").first()
    attention_follow(
        order=order,
        kind="refund_waiting",
        raised=waiting is not None,
        reason=(
            f"A refund of {waiting.amount} {waiting.currency} waits for the customer's bank details until"
            f" {when(waiting.token_expires_at)}."
            if waiting is not None
            else ""
        ),
        because="No refund waits for bank details any more.",
    )


# --- the outbox's answers (commerce/performers.py) -----------------------------------------------


def _refund_of(instruction: Instruction) -> Refund | None:
    dr_order_id = str(instruction.payload.get("orderId") or "")
    if not Order.objects.filter(dr_order_id=dr_order_id).exists():
        return None
    lock_order(dr_order_id=dr_order_id)
    return Refund.objects.select_for_update().filter(instruction=instruction).first()


def refund_sent(*, instruction: Instruction, result: JSONObject) -> None:
    """DR took our POST /refunds (201), or had it already (found in GET /refunds after a lost answer)."""
    refund = _refund_of(instruction)
    if refund is not None and result.get("id"):
        refund_follow(order=refund.order, data=result, refund=refund, source="DR's answer")


def refund_refused(*, instruction: Instruction) -> None:
    """DR refused the POST /refunds for good (400, 409): the refund is refused with DR's words as they
    are. When the call may still have reached DR (no answer, given up), it stays asked: an operator's
    retry looks for it at DR first."""
    refund = _refund_of(instruction)
    if refund is None or refund.state != State.REQUESTED:
        return
    said = instruction.last_error.strip() or "Digital River refused the refund."
    if instruction.effect_uncertain:
        attention_raise(
            order=refund.order,
            kind="refund_failed",
            reason=f"A refund of {refund.amount} {refund.currency} could not be confirmed with Digital River: {said}",
            source=f"instruction:{instruction.pk}",
        )
        return
    refund.mark_refused(description=said[:300])
    refund.failure_reason = said
    refund.save()
    attention_raise(
        order=refund.order,
        kind="refund_failed",
        reason=f"Digital River refused a refund of {refund.amount} {refund.currency}: {said}",
        source=f"instruction:{instruction.pk}",
    )
