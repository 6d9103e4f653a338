"""Returns against DR's HTTP API, faked with ``responses`` at the client's edge: a third-party
return received in two parcels, and a lost answer to each POST that is found at DR, not sent twice.

DR's pages: order-management/returns-and-refunds-1/returns/creating-a-return.md (POST /returns,
POST /returns/{id} per parcel, the refund only once every unit is received) and
digital-river-coordinated-returns.md (POST /fulfillment-returns, which takes no metadata).
"""

import pytest
import responses

from digitalriver.models import Attempt, Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_RETURN, CREATE_RETURN, RECEIVE_RETURN
from fulfillment.models import Return
from fulfillment.returns import (
    ReturnRefused,
    return_execute,
    return_plan,
    return_received_execute,
    return_received_plan,
    return_refund_offer,
)
from tests.conftest import fixture
from tests.fulfillment.returns_at_dr import (
    ReturnsAtDR,
    partner_gadgets_shipped,
    sweep,
    use_fake_dr,
    warehouse_shipped_one,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

ORDER = "231388420777"


@pytest.fixture
def dr(settings):
    use_fake_dr(settings)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ReturnsAtDR(rsps)


@pytest.fixture
def gadgets(dr):
    order = partner_gadgets_shipped(dr_order_id=ORDER)
    return order.lines.get(dr_sku_id="3p-1")


def start(gadgets, units=3):
    plan = return_plan(order=gadgets.order, items=[(gadgets.dr_item_id, units)], reason="Wrong colour")
    [step] = plan.steps
    assert step.what.startswith(f"Tell DR that our partner takes back {units} units of Partner gadget")
    [ret] = return_execute(plan=plan)
    return ret


def ledger(gadgets):
    gadgets.refresh_from_db()
    return gadgets.returned, gadgets.return_requested


def test_a_partner_return_received_in_two_parcels_is_refunded_by_dr_only_with_the_last(dr, gadgets):
    ret = start(gadgets)
    sweep()
    [(path, body)] = dr.posts
    assert path == "/returns"
    assert body == {
        "orderId": ORDER,
        "reason": "Wrong colour",
        "items": [{"itemId": gadgets.dr_item_id, "quantity": 3}],
        "metadata": {"returnId": str(ret.pk)},
    }
    ret.refresh_from_db()
    assert (ret.state, ret.dr_return_id) == (Return.State.CREATED, "ret_1")
    assert ledger(gadgets) == (0, 3)

    first = return_received_plan(ret=ret, items=[(gadgets.dr_item_id, 1)])
    [step] = first.steps
    assert "Record 1 unit of Partner gadget as received back" in step.what
    assert "2 units still to come back" in step.what and "never refunds by itself" in step.what
    return_received_execute(plan=first)
    assert (
        "more units than the return still expects"
        in return_received_plan(ret=ret, items=[(gadgets.dr_item_id, 3)]).refusal.lower()
    ), "a queued receipt counts as received already"
    sweep()
    assert dr.posts[-1] == (
        "/returns/ret_1",
        {"items": [{"itemId": gadgets.dr_item_id, "quantity": 1, "state": "accepted"}]},
    )
    ret.refresh_from_db()
    assert ret.state == Return.State.CREATED
    assert ledger(gadgets) == (1, 2)

    rest = return_received_plan(ret=ret)
    assert rest.completes and "DR refunds it by itself" in rest.steps[0].what
    return_received_execute(plan=rest)
    sweep()
    assert dr.posts[-1][1] == {"items": [{"itemId": gadgets.dr_item_id, "quantity": 2, "state": "accepted"}]}
    ret.refresh_from_db()
    assert ret.state == Return.State.ACCEPTED
    assert ledger(gadgets) == (3, 0)
    assert return_refund_offer(ret=ret) == [], "DR refunds a fully received /returns return by itself"
    assert "nothing more can be received" in return_received_plan(ret=ret).refusal


def test_a_whole_return_received_at_once_is_one_state_accepted(dr, gadgets):
    ret = start(gadgets, units=2)
    sweep()
    plan = return_received_plan(ret=Return.objects.get(pk=ret.pk))
    assert plan.everything
    return_received_execute(plan=plan)
    sweep()
    assert dr.posts[-1] == ("/returns/ret_1", {"state": "accepted"})
    assert ledger(gadgets) == (2, 0)


def test_a_warehouse_return_cannot_be_recorded_as_received_here(dr, deliver):
    order = warehouse_shipped_one(deliver)
    [ret] = return_execute(plan=return_plan(order=order, items=[("143040030336", 1)]))
    assert "the warehouse reports when the goods arrive" in return_received_plan(ret=ret).refusal
    with pytest.raises(ReturnRefused):
        return_received_execute(plan=return_received_plan(ret=ret))


def test_a_lost_answer_to_post_returns_is_found_by_our_id_and_not_sent_again(dr, gadgets):
    ret = start(gadgets)
    dr.lose_answers = 1
    sweep()
    instruction = Instruction.objects.get(kind=CREATE_RETURN)
    assert instruction.state == Instruction.State.RETRY_WAIT and instruction.effect_uncertain
    sweep()
    instruction.refresh_from_db()
    assert len(dr.posts) == 1, "sent twice: the return was not found by its metadata"
    assert instruction.state == Instruction.State.DONE
    assert instruction.attempt_set.order_by("-number").first().outcome == Attempt.Outcome.ALREADY_DONE
    ret.refresh_from_db()
    assert (ret.state, ret.dr_return_id) == (Return.State.CREATED, "ret_1")


def test_a_lost_answer_to_a_receipt_is_not_sent_again_when_dr_counted_it(dr, gadgets):
    ret = start(gadgets)
    sweep()
    return_received_execute(
        plan=return_received_plan(ret=Return.objects.get(pk=ret.pk), items=[(gadgets.dr_item_id, 1)])
    )
    dr.lose_answers = 1
    sweep()
    receipt = Instruction.objects.get(kind=RECEIVE_RETURN)
    assert receipt.state == Instruction.State.RETRY_WAIT and receipt.effect_uncertain
    sweep()
    receipt.refresh_from_db()
    assert [path for path, _ in dr.posts].count("/returns/ret_1") == 1, "the parcel would count twice"
    assert receipt.state == Instruction.State.DONE
    assert dr.returns["ret_1"]["items"][0]["quantityAccepted"] == 1
    assert ledger(gadgets) == (1, 2)


def test_a_parcel_that_failed_is_sent_again_though_a_later_parcel_reached_dr(dr, gadgets):
    """Two parcels queued at once: the first meets a 502 before DR records it, the second lands. The
    first's look at DR must not take the second's unit for its own (it would never be sent, and the
    return would never complete nor be refunded)."""
    ret = start(gadgets, units=2)
    sweep()
    for _ in range(2):
        plan = return_received_plan(ret=Return.objects.get(pk=ret.pk), items=[(gadgets.dr_item_id, 1)])
        return_received_execute(plan=plan)
    first, second = Instruction.objects.filter(kind=RECEIVE_RETURN).order_by("pk")
    dr.fail_receipts = 1
    sweep()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.effect_uncertain) == (Instruction.State.RETRY_WAIT, True)
    assert second.state == Instruction.State.DONE
    sweep()
    first.refresh_from_db()
    assert first.state == Instruction.State.DONE
    assert dr.returns["ret_1"]["items"][0]["quantityAccepted"] == 2, "the first parcel was never recorded"
    assert Return.objects.get(pk=ret.pk).state == Return.State.ACCEPTED
    assert ledger(gadgets) == (2, 0)


def test_a_refused_return_is_marked_failed_with_drs_words(dr, gadgets):
    ret = start(gadgets)
    dr.refuse = (
        409,
        {
            "type": "conflict",
            "errors": [
                {
                    "code": "quantity_too_large",
                    "parameter": "items[0].qty",
                    "message": "Return quantity is larger than order quantity",
                }
            ],
        },
    )
    sweep()
    ret.refresh_from_db()
    assert ret.state == Return.State.FAILED
    assert "Return quantity is larger than order quantity" in ret.failure_reason
    assert ledger(gadgets) == (0, 0), "the units are no longer on their way back"


def test_a_lost_answer_to_post_fulfillment_returns_is_found_by_its_units(dr, deliver):
    order = warehouse_shipped_one(deliver)
    # A refused parcel of the same unit, older than our request, is not ours.
    dr.fulfillment_returns.append({**fixture("fulfillment_return.json"), "id": "ret_old", "type": "warehouse"})
    [ret] = return_execute(plan=return_plan(order=order, items=[("143040030336", 1)]))
    dr.lose_answers = 1
    sweep()
    instruction = Instruction.objects.get(kind=CREATE_FULFILLMENT_RETURN)
    assert instruction.effect_uncertain
    sweep()
    instruction.refresh_from_db()
    assert [path for path, _ in dr.posts] == ["/fulfillment-returns"], "sent twice"
    assert instruction.state == Instruction.State.DONE
    ret.refresh_from_db()
    assert (ret.state, ret.dr_return_id) == (Return.State.CREATED, "ret_fr_2")  # ret_old was not taken
