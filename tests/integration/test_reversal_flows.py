"""Every reversal end to end through the sandbox: returns, refunds, failures, disputes and documents.

The storefront and the warehouse act through the sandbox's services, customer service through our
API with a token of a user in the right role group, and every event reaches us through the sandbox's
delivery loop (``flow.settle``). Each flow ends by comparing our records with DR's (the sandbox's
tables): one refund at DR per refund asked, and the same money on both sides."""

from decimal import Decimal

import pytest

from catalog.models import Sku
from commerce.models import AttentionItem, Document, Order, Refund
from commerce.refunds import refund_request
from fulfillment.models import Notification, Return
from sandbox.models import FulfillmentReturn as SandboxFulfillmentReturn
from sandbox.models import Return as SandboxReturn
from sandbox.services.returns import fulfillment_return_approve, fulfillment_return_receive

from .reversal_support import (
    REFUND_FAILS,
    assert_money_agrees_with_dr,
    at_dr,
    bank_answers_at_once,
    fresh,
    item_id,
    person,
    place,
    posts,
    refunds_at_dr,
    ship,
)

pytestmark = pytest.mark.django_db(transaction=True)
THIRD_PARTY = Sku.FulfillmentModel.THIRD_PARTY


def returns_url(order: Order) -> str:
    return f"/api/orders/{order.dr_order_id}/returns/"


def refunds_url(order: Order) -> str:
    return f"/api/orders/{order.dr_order_id}/refunds/"


# --- 1. a DR-coordinated return, then our refund of what came back ---------------------------------


def test_a_warehouse_return_is_approved_received_and_refunded_with_a_credit_memo(flow):
    bank_answers_at_once()
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 2))
    ship(flow, order, "dist-a", 2)
    line = order.lines.get()
    assert (line.shipped, line.fulfilled, line.captured) == (2, 2, 2)
    agent = person("agent", "Customer service")

    response = agent.post(
        returns_url(order),
        {"items": [{"item_id": line.dr_item_id, "quantity": 1}], "reason": "Too small"},
        format="json",
    )
    assert response.status_code == 202, response.content
    flow.settle()

    [ret] = Return.objects.filter(order=order)
    [at_warehouse] = SandboxFulfillmentReturn.objects.filter(fulfillment_order__upstream_id=order.dr_order_id)
    assert posts("/fulfillment-returns") == 1
    assert (ret.api, ret.state, ret.dr_return_id) == (
        Return.Api.FULFILLMENT_RETURNS,
        Return.State.CREATED,
        at_warehouse.dr_id,
    )
    assert order.lines.get().return_requested == 1

    fulfillment_return_approve(return_id=at_warehouse.dr_id)
    flow.settle()
    ret.refresh_from_db()
    assert ret.state == Return.State.PENDING
    assert ret.location and ret.location.get("name") == "Sandbox returns desk"
    [email] = Notification.objects.filter(order=order, kind=Notification.Kind.RETURN_APPROVED)
    assert email.to == order.email and "Sandbox returns desk" in email.body

    fulfillment_return_receive(return_id=at_warehouse.dr_id)
    flow.settle()
    ret.refresh_from_db()
    line = order.lines.get()
    assert ret.state == Return.State.ACCEPTED and ret.lines.get().quantity_accepted == 1
    assert (line.returned, line.return_requested) == (1, 0)
    # Without REFUND_RETURNS_AUTOMATICALLY nothing refunds the received unit by itself.
    assert not Refund.objects.filter(order=order).exists() and refunds_at_dr(order) == []

    refund = refund_request(
        order=fresh(order), items=[(line.dr_item_id, 1)], reason="Returned", for_return=ret.dr_return_id
    )
    assert refund is not None
    flow.settle()

    refund.refresh_from_db()
    [at_bank] = refunds_at_dr(order)
    assert (refund.state, refund.dr_refund_id, refund.for_return) == (
        Refund.State.SUCCEEDED,
        at_bank.dr_id,
        ret.dr_return_id,
    )
    assert refund.refunded_amount == at_bank.refunded_amount == (line.amount + line.tax_amount) / 2
    line = order.lines.get()
    order = fresh(order)
    assert line.refunded_amount == refund.refunded_amount
    assert order.refunded_amount == at_dr(order).refunded_amount == refund.refunded_amount
    assert Document.objects.filter(order=order, purpose=Document.Purpose.CREDIT_MEMO).count() == 1
    assert Notification.objects.filter(order=order, kind=Notification.Kind.REFUND_COMPLETED).count() == 1
    assert not order.refund_failed
    assert_money_agrees_with_dr(order)


# --- 2. a third-party return received in two parcels: DR refunds it by itself --------------------


def record_shipment(flow, agent, order: Order, sku_id: str, quantity: int) -> None:
    """Our partner shipped: customer service records it, which captures the units."""
    body = {"items": [{"item_id": item_id(order, sku_id), "quantity": quantity}], "tracking_number": "JD0001"}
    response = agent.post(f"/api/orders/{order.dr_order_id}/shipments/", body, format="json")
    assert response.status_code == 202, response.content
    flow.settle()


def test_a_partner_return_received_in_two_parcels_is_refunded_by_dr_once_complete(flow):
    bank_answers_at_once()
    flow.sku("gadget", THIRD_PARTY)
    order = place(flow, ("gadget", 3))
    agent = person("agent", "Customer service")
    record_shipment(flow, agent, order, "gadget", 3)
    line = order.lines.get()
    assert (line.shipped, line.fulfilled, line.captured) == (3, 3, 3)

    response = agent.post(returns_url(order), {"items": [{"item_id": line.dr_item_id, "quantity": 2}]}, format="json")
    assert response.status_code == 202, response.content
    [queued] = response.json()["returns"]
    flow.settle()
    ret = Return.objects.get(pk=queued["id"])
    [at_partner] = SandboxReturn.objects.filter(order__dr_id=order.dr_order_id)
    assert (ret.api, ret.state, ret.dr_return_id) == (Return.Api.RETURNS, Return.State.CREATED, at_partner.dr_id)
    received_url = f"{returns_url(order)}{ret.pk}/received/"

    first = agent.post(received_url, {"items": [{"item_id": line.dr_item_id, "quantity": 1}]}, format="json")
    assert first.status_code == 202, first.content
    assert first.json()["completes_the_return"] is False
    flow.settle()
    ret.refresh_from_db()
    assert ret.state == Return.State.CREATED and ret.lines.get().quantity_accepted == 1
    assert order.lines.get().returned == 1
    assert refunds_at_dr(order) == [] and not Refund.objects.filter(order=order).exists()  # a parcel never refunds

    second = agent.post(received_url, {"items": [{"item_id": line.dr_item_id, "quantity": 1}]}, format="json")
    assert second.status_code == 202, second.content
    assert second.json()["completes_the_return"] is True
    flow.settle()

    ret.refresh_from_db()
    assert ret.state == Return.State.ACCEPTED and ret.lines.get().quantity_accepted == 2
    assert posts("/returns") == 1 and posts(f"/returns/{ret.dr_return_id}") == 2
    [at_bank] = refunds_at_dr(order)
    [refund] = Refund.objects.filter(order=order)
    assert refund.initiated_by_dr and refund.dr_refund_id == at_bank.dr_id
    assert refund.state == Refund.State.SUCCEEDED and at_bank.state == "succeeded"
    line = order.lines.get()
    two_units = ((line.amount + line.tax_amount) * 2 / 3).quantize(Decimal("0.01"))
    assert refund.refunded_amount == two_units
    assert (line.returned, line.return_requested, line.refunded_amount) == (2, 0, two_units)
    # Nothing more is ours to refund for that return.
    agent_refunds = person("lead", "Refunds")
    again = agent_refunds.post(
        refunds_url(order), {"reason": "again", "items": [{"item_id": line.dr_item_id, "quantity": 3}]}, format="json"
    )
    assert again.status_code == 409, again.content
    assert_money_agrees_with_dr(order)


# --- 3. refunds by amount, by units, of the shipping; too much is refused before any call ----------


def test_refunds_by_amount_units_and_shipping_each_reach_dr_once_and_too_much_is_refused_here(flow):
    from digitalriver.models import Instruction

    bank_answers_at_once()
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 3))
    ship(flow, order, "dist-a", 3)
    lead = person("lead", "Refunds")
    line = order.lines.get()
    unit = ((line.amount + line.tax_amount) / 3).quantize(Decimal("0.01"))
    choice = at_dr(order).shipping_choice
    shipping = (Decimal(str(choice["amount"])) + Decimal(str(choice["taxAmount"]))).quantize(Decimal("0.01"))
    asked = [
        {"reason": "Late delivery", "amount": "5.00"},
        {"reason": "Arrived broken", "items": [{"item_id": line.dr_item_id, "quantity": 1}]},
        {"reason": "Slow shipping", "type": "shipping"},
    ]
    for body in asked:
        response = lead.post(refunds_url(order), body, format="json")
        assert response.status_code == 202, response.content
        flow.settle()

    refunds = list(Refund.objects.filter(order=order).order_by("pk"))
    assert [refund.kind for refund in refunds] == [Refund.Kind.AMOUNT, Refund.Kind.UNITS, Refund.Kind.SHIPPING]
    assert {refund.state for refund in refunds} == {Refund.State.SUCCEEDED}
    at_bank = refunds_at_dr(order)
    assert len(at_bank) == 3 == posts("/refunds")
    assert [refund.refunded_amount for refund in refunds] == [Decimal("5.00"), unit, shipping]
    assert [refund.refunded_amount for refund in at_bank] == [Decimal("5.00"), unit, shipping]
    assert Document.objects.filter(order=order, purpose=Document.Purpose.CREDIT_MEMO).count() == 3
    order = fresh(order)
    assert order.refunded_amount == Decimal("5.00") + unit + shipping
    assert_money_agrees_with_dr(order)

    left = at_dr(order).available_to_refund
    instructions = Instruction.objects.count()
    too_much = lead.post(
        refunds_url(order), {"reason": "Too much", "amount": str(left + Decimal("0.01"))}, format="json"
    )
    assert too_much.status_code == 409, too_much.content
    assert f"Only {left} USD" in too_much.json()["detail"]
    too_many = lead.post(
        refunds_url(order),
        {"reason": "Too many", "items": [{"item_id": line.dr_item_id, "quantity": 3}]},
        format="json",
    )
    assert too_many.status_code == 409 and "2 of 3 captured units" in too_many.json()["detail"]
    shipping_again = lead.post(refunds_url(order), {"reason": "again", "type": "shipping"}, format="json")
    assert shipping_again.status_code == 409, shipping_again.content
    assert posts("/refunds") == 3 and Instruction.objects.count() == instructions
    assert Refund.objects.filter(order=order).count() == 3 and len(refunds_at_dr(order)) == 3

    # What is left can be refunded exactly.
    rest = lead.post(refunds_url(order), {"reason": "The rest", "amount": str(left)}, format="json")
    assert rest.status_code == 202, rest.content
    flow.settle()
    order = fresh(order)
    assert order.refunded_amount == order.captured_amount == at_dr(order).refunded_amount
    assert order.state == Order.State.RETURNED
    assert_money_agrees_with_dr(order)


# --- 4. a failed refund: attention, a retry, cleared when a refund succeeds ------------------------


def test_a_refund_the_bank_refuses_needs_attention_until_its_retry_succeeds(flow):
    from commerce.refunds import refund_retry
    from sandbox.services.control import control_update
    from sandbox.services.refunds import refund_complete

    bank_answers_at_once()
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 1), card=REFUND_FAILS)
    ship(flow, order, "dist-a", 1)
    lead = person("lead", "Refunds")

    response = lead.post(refunds_url(order), {"reason": "Late", "amount": "10.00"}, format="json")
    assert response.status_code == 202, response.content
    flow.settle()

    failed = Refund.objects.get(pk=response.json()["id"])
    [refused_at_bank] = refunds_at_dr(order)
    assert (failed.state, refused_at_bank.state) == (Refund.State.FAILED, "failed")
    assert failed.failure_reason == refused_at_bank.failure_reason
    order = fresh(order)
    assert order.refund_failed and order.refunded_amount == 0
    [item] = AttentionItem.objects.filter(order=order, kind="refund_failed", cleared_at__isnull=True)
    assert "10.00 USD failed" in item.reason

    # The card 4111 refuses every refund, a retry too: the bank is kept waiting (a long delay) and the
    # sandbox's page action "complete" pays the retry by hand, as an agent who asked the bank would.
    control_update({"refund_delay_seconds": 3600})
    retry = refund_retry(refund=failed)
    flow.settle()
    retry.refresh_from_db()
    assert retry.retry_of == failed and retry.state == Refund.State.PENDING and retry.dr_refund_id
    assert fresh(order).refund_failed, "still open while the retry is pending"
    refund_complete(refund_id=retry.dr_refund_id)
    flow.settle()

    retry.refresh_from_db()
    assert retry.state == Refund.State.SUCCEEDED and retry.refunded_amount == Decimal("10.00")
    order = fresh(order)
    assert not order.refund_failed
    item.refresh_from_db()
    assert item.cleared_at is not None and "10.00 USD succeeded" in item.cleared_because
    assert len(refunds_at_dr(order)) == 2 == posts("/refunds")
    assert order.refunded_amount == Decimal("10.00")
    assert Notification.objects.filter(order=order, kind=Notification.Kind.REFUND_COMPLETED).count() == 1
    assert_money_agrees_with_dr(order)


# --- 5. a dispute locks cancel, shipment, return and refund until DR resolves it ----------------------


def test_a_dispute_refuses_every_reversal_with_its_reason_until_it_is_resolved(flow):
    from digitalriver.models import Instruction
    from fulfillment.cancellations import CancellationRefused, cancellation_execute, cancellation_plan
    from fulfillment.returns import ReturnRefused, return_execute, return_plan
    from sandbox.services.disputes import dispute_open, dispute_resolve

    bank_answers_at_once()
    flow.sku("dist-a")
    flow.sku("gadget", THIRD_PARTY)
    order = place(flow, ("dist-a", 3), ("gadget", 2))
    ship(flow, order, "dist-a", 1)
    agent = person("agent", "Customer service", "Refunds")
    dist, gadget = item_id(order, "dist-a"), item_id(order, "gadget")
    state_before = fresh(order).state

    dispute_open(order_id=order.dr_order_id)
    flow.settle()
    order = fresh(order)
    assert order.dispute_open and order.state == Order.State.DISPUTE
    reason = order.dispute_lock
    assert "in dispute" in reason
    instructions, calls = Instruction.objects.count(), posts("/refunds") + posts("/fulfillment-returns")

    asks = {
        "cancellations/": {"items": [{"item_id": dist, "quantity": 1}], "reason": "Changed mind"},
        "shipments/": {"items": [{"item_id": gadget, "quantity": 1}], "tracking_number": "JD1"},
        "returns/": {"items": [{"item_id": dist, "quantity": 1}]},
        "refunds/": {"reason": "Goodwill", "amount": "1.00"},
    }
    for path, body in asks.items():
        response = agent.post(f"/api/orders/{order.dr_order_id}/{path}", body, format="json")
        assert (response.status_code, response.json()) == (409, {"detail": reason}), path
    # The services say the same to any other caller (the admin's forms, a script).
    with pytest.raises(CancellationRefused, match="in dispute"):
        cancellation_execute(plan=cancellation_plan(order=order, items=[(dist, 1)], reason="x"))
    with pytest.raises(ReturnRefused, match="in dispute"):
        return_execute(plan=return_plan(order=order, items=[(dist, 1)]))
    assert refund_request(order=order, items=[(dist, 1)], reason="x") is None
    assert Instruction.objects.count() == instructions
    assert posts("/refunds") + posts("/fulfillment-returns") == calls

    dispute_resolve(order_id=order.dr_order_id)
    flow.settle()
    order = fresh(order)
    assert not order.dispute_open and order.state == state_before and order.dispute_lock == ""
    for path, body in asks.items():
        response = agent.post(f"/api/orders/{order.dr_order_id}/{path}", body, format="json")
        assert response.status_code == 202, (path, response.content)
        flow.settle()

    order = fresh(order)
    dist_line, gadget_line = order.lines.get(dr_item_id=dist), order.lines.get(dr_item_id=gadget)
    assert (dist_line.cancel_requested + dist_line.cancelled, dist_line.return_requested) == (1, 1)
    assert (gadget_line.shipped, gadget_line.fulfilled) == (1, 1)
    [refund] = Refund.objects.filter(order=order, state=Refund.State.SUCCEEDED)
    assert refund.refunded_amount == Decimal("1.00")
    assert_money_agrees_with_dr(order)


# --- 6. the invoice and a credit memo, downloaded through our API ------------------------------------


def test_the_invoice_and_a_credit_memo_are_downloaded_as_pdfs_through_our_api(flow):
    from sandbox.models import File as SandboxFile

    bank_answers_at_once()
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 2))
    ship(flow, order, "dist-a", 2)
    lead = person("lead", "Refunds")
    assert lead.post(refunds_url(order), {"reason": "Late", "amount": "3.00"}, format="json").status_code == 202
    flow.settle()
    agent = person("agent", "Customer service")

    detail = agent.get(f"/api/orders/{order.dr_order_id}/")
    assert detail.status_code == 200
    listed = {document["purpose"]: document for document in detail.json()["documents"]}
    assert set(listed) == {"customer_invoice", "customer_credit_memo"}
    assert detail.json()["documents_note"] == ""
    for purpose, document in listed.items():
        [at_dr_file] = SandboxFile.objects.filter(order__dr_id=order.dr_order_id, purpose=purpose)
        assert document["dr_file_id"] == at_dr_file.dr_id
        response = agent.get(document["download"])
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/pdf"
        body = b"".join(response.streaming_content)
        assert body.startswith(b"%PDF-") and body == bytes(at_dr_file.content)
    assert Document.objects.filter(order=order).count() == 2
    missing = agent.get(f"/api/orders/{order.dr_order_id}/documents/file_not_ours/")
    assert missing.status_code == 404


def test_a_capture_dr_refuses_during_a_dispute_is_sent_again_once_the_dispute_is_resolved(flow):
    """The warehouse ships while the order is in dispute: DR refuses the capture (409
    order_not_submitted), so the order needs a person (capture failed); order.dispute.resolved sends
    the capture again by itself (fulfillment.services.captures_retry_after_dispute)."""
    from digitalriver.models import Instruction
    from fulfillment.kinds import POST_FULFILLMENT
    from sandbox.services.disputes import dispute_open, dispute_resolve

    flow.sku("dist-a")
    order = place(flow, ("dist-a", 2))
    ship(flow, order, "dist-a", 1)
    dispute_open(order_id=order.dr_order_id)
    flow.settle()
    ship(flow, order, "dist-a", 1)
    line = order.lines.get()
    assert (line.shipped, line.fulfilled) == (2, 1)
    [refused] = Instruction.objects.filter(kind=POST_FULFILLMENT, state=Instruction.State.FAILED)
    assert refused.last_error_code == "order_not_submitted"
    order = fresh(order)
    assert order.capture_failed
    assert "order_not_submitted" in order.attention_items.get(kind="capture_failed", cleared_at__isnull=True).reason

    dispute_resolve(order_id=order.dr_order_id)
    flow.settle()
    refused.refresh_from_db()
    assert refused.state == Instruction.State.DONE
    line = order.lines.get()
    assert (line.shipped, line.fulfilled, line.captured) == (2, 2, 2)
    order = fresh(order)
    assert order.state == Order.State.COMPLETE and order.captured_amount == at_dr(order).captured_amount
    assert not order.capture_failed, "the capture that failed has happened"


def test_a_refund_waiting_for_bank_details_then_failing_is_followed_and_told_once(flow):
    from tests.integration.reversal_support import REFUND_NEEDS_INFORMATION

    bank_answers_at_once()
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 1), card=REFUND_NEEDS_INFORMATION)
    ship(flow, order, "dist-a", 1)
    lead = person("lead", "Refunds")
    response = lead.post(refunds_url(order), {"reason": "Late", "amount": "2.00"}, format="json")
    assert response.status_code == 202, response.content
    flow.settle()

    refund = Refund.objects.get(pk=response.json()["id"])
    [at_bank] = refunds_at_dr(order)
    assert (refund.state, at_bank.state) == (Refund.State.FAILED, "failed")
    assert refund.token_expires_at is not None  # it waited for the customer's bank details first
    assert Notification.objects.filter(order=order, kind=Notification.Kind.REFUND_NEEDS_BANK_DETAILS).count() == 1
    order = fresh(order)
    assert order.refund_failed and not order.refund_waiting
    assert AttentionItem.objects.get(order=order, kind="refund_waiting").cleared_at is not None
    assert_money_agrees_with_dr(order)


def test_a_chargeback_lowers_what_can_be_refunded_here_as_at_dr(flow):
    from sandbox.services.disputes import chargeback

    flow.sku("dist-a")
    order = place(flow, ("dist-a", 2))
    ship(flow, order, "dist-a", 2)
    chargeback(order_id=order.dr_order_id, amount=Decimal("20.00"))
    flow.settle()
    left = at_dr(order).available_to_refund
    order = fresh(order)
    assert order.chargebacks.count() == 1
    lead = person("lead", "Refunds")
    too_much = lead.post(refunds_url(order), {"reason": "x", "amount": str(left + Decimal("0.01"))}, format="json")
    assert too_much.status_code == 409, too_much.content
    assert f"Only {left} USD" in too_much.json()["detail"] and posts("/refunds") == 0
