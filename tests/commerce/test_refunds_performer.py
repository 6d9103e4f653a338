"""POST /refunds through the outbox, DR faked with ``responses`` at the client's edge: DR's 201, DR's
400 shown as it is, and a lost answer that must never refund twice (DR has no idempotency key: the
sender finds our refund by ``metadata.refundReference`` in ``GET /refunds?orderId=…``)."""

import copy
import json
import re
from decimal import Decimal

import pytest
import requests
import responses

from commerce.models import Order, Refund
from commerce.refunds import refund_execute, refund_plan
from digitalriver.models import Instruction
from digitalriver.services.outbox import outbox_sweep
from tests.commerce.refund_stories import ORDER, captured_order
from tests.conftest import fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

BASE = "https://dr.refunds.test"


class RefundsAtDR:
    """POST and GET /refunds, answering DR's refund (tests/fixtures/dr/refund.json)."""

    def __init__(self, rsps: responses.RequestsMock):
        self.held: list[dict] = []
        self.posts: list[dict] = []
        self.lose_answers = 0
        self.refuse: tuple[int, dict] | None = None
        rsps.add_callback(responses.POST, f"{BASE}/refunds", callback=self._post)
        rsps.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/refunds(\?.*)?$"), callback=self._get)

    def _post(self, request):
        body = json.loads(request.body)
        self.posts.append(body)
        if self.refuse is not None:
            status, error = self.refuse
            return status, {}, json.dumps(error)
        refund = copy.deepcopy(fixture("refund.json"))
        refund.update(id=f"re_{len(self.held) + 1}", metadata=body["metadata"], amount=body.get("amount", 0))
        self.held.append(refund)
        if self.lose_answers:
            self.lose_answers -= 1
            return requests.exceptions.ReadTimeout("read timed out")
        return 201, {}, json.dumps(refund)

    def _get(self, request):
        assert request.params.get("orderId") == ORDER
        other = {**fixture("refund.json"), "id": "re_other", "metadata": {"refundReference": "someone-else"}}
        return 200, {}, json.dumps({"hasMore": False, "data": [other, *self.held]})


@pytest.fixture
def dr(settings):
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    settings.DR_CLIENT_MAX_RETRIES = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield RefundsAtDR(rsps)


def queued_refund() -> Refund:
    order = captured_order()
    return refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("12.50")))


def test_drs_answer_makes_the_refund_pending_with_drs_id(dr):
    refund = queued_refund()
    outbox_sweep(ignore_backoff=True)
    refund.refresh_from_db()
    assert (refund.state, refund.dr_refund_id) == (Refund.State.PENDING, "re_1")
    assert dr.posts == [refund.request]
    assert refund.refunded_amount == 0  # a 201 is not money back


def test_a_lost_answer_is_found_at_dr_and_never_sent_twice(dr):
    refund = queued_refund()
    dr.lose_answers = 1
    outbox_sweep(ignore_backoff=True)
    instruction = Instruction.objects.get(pk=refund.instruction_id)
    assert instruction.state == Instruction.State.RETRY_WAIT and instruction.effect_uncertain
    outbox_sweep(ignore_backoff=True)
    assert len(dr.posts) == 1
    instruction.refresh_from_db()
    assert instruction.state == Instruction.State.DONE
    refund.refresh_from_db()
    assert (refund.state, refund.dr_refund_id) == (Refund.State.PENDING, "re_1")


def test_drs_refusal_is_shown_as_it_is_and_flags_the_order(dr):
    refund = queued_refund()
    dr.refuse = (400, fixture("error_refund_amount_too_large.json"))
    outbox_sweep(ignore_backoff=True)
    refund.refresh_from_db()
    assert refund.state == Refund.State.REFUSED
    said = "invalid_parameter (amountRequested): The requested refund amount is greater than the available amount."
    assert refund.failure_reason == said
    order = Order.objects.get(pk=refund.order_id)
    assert order.refund_failed
    assert said in order.attention_items.get(kind="refund_failed").reason
