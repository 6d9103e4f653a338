"""DR's refund events (issuing-refunds.md#handling-refund-state-changes), delivered to our inbox:
idempotent, never backwards, the ledger and the order's flags following, one email per refund."""

from decimal import Decimal

import pytest

from commerce.models import ChargeOperation, Order, Refund
from commerce.refund_mirror import refund_mirror
from commerce.refunds import refund_execute, refund_plan, refund_retry
from digitalriver.models import WebhookEvent
from digitalriver.registry import get_event_handler
from fulfillment.models import Notification
from tests.commerce.refund_stories import MANAGED, captured_order, refund_event
from tests.conftest import fixture, make_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog", "no_dr")]


@pytest.fixture
def order():
    return captured_order()


def managed_refund(order) -> Refund:
    return refund_execute(plan=refund_plan(order=order, reason="broken", items=[(MANAGED, 1)]))


def emails(kind) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind))


def test_complete_then_a_late_pending_leaves_it_refunded(order, deliver):
    refund = managed_refund(order)
    complete = refund_event("event_refund_complete.json", refund)
    deliver("refund.complete", complete)
    deliver("refund.complete", complete)  # DR delivers twice
    deliver("refund.pending", {**complete, "state": "pending", "refundedAmount": 0.0})
    refund.refresh_from_db()
    assert (refund.state, refund.refunded_amount) == (Refund.State.SUCCEEDED, Decimal("21.59"))
    assert refund.dr_refund_id == complete["id"]
    line = order.lines.get(dr_item_id=MANAGED)
    assert line.refunded_amount == Decimal("21.59") == line.captured_amount
    [email] = emails(Notification.Kind.REFUND_COMPLETED)
    assert "21.59 USD" in email.subject and "1 unit of Managed widget" in email.body
    assert Order.objects.get(pk=order.pk).refunded_amount == Decimal("21.59")


def test_pending_shows_nothing_refunded(order, deliver):
    refund = managed_refund(order)
    deliver("refund.pending", refund_event("event_refund_pending.json", refund, amount=21.59))
    refund.refresh_from_db()
    assert (refund.state, refund.refunded_amount) == (Refund.State.PENDING, 0)
    assert order.lines.get(dr_item_id=MANAGED).refunded_amount == 0
    assert not emails(Notification.Kind.REFUND_COMPLETED)


def test_failed_then_retried_then_complete_clears_the_flag(order, deliver):
    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("27.01")))
    deliver("refund.failed", refund_event("event_refund_failed.json", refund))
    refund.refresh_from_db()
    assert (refund.state, refund.failure_reason) == (Refund.State.FAILED, "expired_or_canceled_card")
    order.refresh_from_db()
    assert order.refund_failed
    assert "expired_or_canceled_card" in order.attention_items.get(kind="refund_failed").reason

    retry = refund_retry(refund=refund)
    assert (retry.retry_of, retry.amount, retry.request["amount"]) == (refund, Decimal("27.01"), 27.01)
    deliver("refund.complete", refund_event("event_refund_complete.json", retry, items=[], refundedAmount=27.01))
    order.refresh_from_db()
    assert not order.refund_failed
    assert order.attention_items.get(kind="refund_failed").cleared_because == "A refund of 27.01 USD succeeded."


def test_bank_details_wanted_until_the_expiry_then_cleared(order, deliver):
    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("33")))
    waiting = refund_event("event_refund_pending_information.json", refund)
    deliver("refund.pending_information", waiting)
    deliver("refund.pending_information", waiting)
    refund.refresh_from_db()
    assert refund.state == Refund.State.PENDING_INFORMATION
    assert refund.token_expires_at.isoformat() == "2026-12-21T20:37:21.087000+00:00"
    order.refresh_from_db()
    assert order.refund_waiting
    assert "until 21 Dec 2026" in order.attention_items.get(kind="refund_waiting").reason
    [email] = emails(Notification.Kind.REFUND_NEEDS_BANK_DETAILS)
    assert "21 December 2026" in email.body
    assert "token" not in refund.raw.get("tokenInformation", {})

    deliver("refund.complete", {**waiting, "state": "succeeded", "refundedAmount": 33.0, "tokenInformation": None})
    order.refresh_from_db()
    assert not order.refund_waiting
    assert len(emails(Notification.Kind.REFUND_COMPLETED)) == 1


def test_a_refund_dr_made_by_itself_is_recorded(order, deliver):
    data = fixture("event_refund_complete.json")["data"]["object"]
    data.pop("metadata")
    deliver("refund.complete", data)
    refund = Refund.objects.get()
    assert refund.initiated_by_dr and refund.state == Refund.State.SUCCEEDED
    assert refund.lines.get().order_line.dr_item_id == MANAGED


def test_a_line_is_never_refunded_above_its_capture(order, deliver):
    data = fixture("event_refund_complete.json")["data"]["object"]
    data.pop("metadata")
    data["items"][0].update(amount=99.0, refundedAmount=99.0)
    deliver("refund.complete", data)
    line = order.lines.get(dr_item_id=MANAGED)
    assert line.refunded_amount == line.captured_amount == Decimal("21.59")


def test_dr_documents_no_refund_expired_event_but_an_expired_refund_is_followed(order, post_event):
    """all-event-types.md lists no refund.expired; the refund object's state enum has ``expired``."""
    assert get_event_handler("refund.expired") is None
    post_event(make_event("refund.expired", {"id": "re_x", "orderId": order.dr_order_id, "state": "expired"}))
    assert WebhookEvent.objects.get(type="refund.expired").state == WebhookEvent.State.IGNORED

    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("33")))
    refund_mirror(data=refund_event("event_refund_pending_information.json", refund))
    refund_mirror(data=refund_event("event_refund_pending_information.json", refund, state="expired"))
    refund.refresh_from_db()
    assert refund.state == Refund.State.EXPIRED
    order.refresh_from_db()
    assert order.refund_failed and not order.refund_waiting
    assert "expired" in order.attention_items.get(kind="refund_failed").reason


def test_charge_refund_events_mirror_the_charge(order, deliver):
    deliver("order.charge.refund.complete", fixture("event_order_charge_refund_complete.json")["data"]["object"])
    operation = ChargeOperation.objects.get(kind=ChargeOperation.Kind.REFUND)
    assert (operation.amount, operation.state) == (Decimal("21.59"), "complete")


def test_drs_event_without_our_reference_before_our_answer_is_ours_not_a_second_refund(order, deliver):
    """DR's refund.pending may reach us before the answer to our POST /refunds is recorded, and carry
    no ``metadata.refundReference``: it is our open refund of that amount, not one DR made by itself."""
    from commerce.refund_mirror import refund_sent

    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("12.50")))
    data = fixture("event_refund_pending.json")["data"]["object"]
    data.pop("metadata")
    deliver("refund.pending", data)
    assert refund.instruction is not None
    refund_sent(instruction=refund.instruction, result={**data, "metadata": {"refundReference": str(refund.reference)}})

    [only] = Refund.objects.all()
    assert (only.pk, only.dr_refund_id, only.state) == (refund.pk, data["id"], Refund.State.PENDING)
    assert not only.initiated_by_dr


def test_drs_own_refund_of_another_amount_is_not_taken_for_our_open_one(order, deliver):
    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("10.00")))
    data = fixture("event_refund_pending.json")["data"]["object"]
    data.pop("metadata")
    deliver("refund.pending", data)
    refund.refresh_from_db()
    assert refund.dr_refund_id == "" and refund.state == Refund.State.REQUESTED
    assert Refund.objects.get(dr_refund_id=data["id"]).initiated_by_dr
