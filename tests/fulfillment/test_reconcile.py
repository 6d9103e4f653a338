"""`orders_reconcile` against the sandbox over real HTTP: missed webhooks recovered from `GET /orders/{id}`
and `GET /events`, the event window of a first and a later run, DR failing for part of the work."""

import json
from datetime import timedelta

import pytest
import responses
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_fsm_log.models import StateLog

from commerce.models import Order
from digitalriver.models import Instruction, WebhookEvent
from fulfillment.kinds import CREATE_FULFILLMENT_ORDER
from fulfillment.reconcile import FIRST_RUN_LOOKBACK, SAFETY_MARGIN, orders_reconcile
from fulfillment.tasks import reconcile_orders
from sandbox.delivery import deliver_due
from sandbox.models import Event as SandboxEvent
from sandbox.models import FulfillmentOrder as SandboxFulfillmentOrder
from sandbox.services.control import control_update
from sandbox.services.orders import Line, order_place, order_release
from sandbox.timefmt import dr_time

live = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_client_retries(settings):
    """A 503 from the bad network fails the call at once instead of after the client's retries."""
    settings.DR_CLIENT_MAX_RETRIES = 0


def place_unseen(sku_id: str, *, reviewed: bool = False):
    """Place an order (held in review first, if asked) whose webhooks the bad network drops: DR has
    it, we have heard nothing."""
    control_update({"drop_rate": 1.0})
    order = order_place(lines=[Line(sku_id=sku_id, quantity=2)], state="in_review" if reviewed else "accepted")
    if reviewed:
        order_release(order_id=order.dr_id)
    deliver_due()
    return order


def backdate(dr_order_id: str, event_type: str, when) -> None:
    event = SandboxEvent.objects.get(order_id=dr_order_id, type=event_type)
    event.created_time = when
    event.envelope = {**event.envelope, "createdTime": dr_time(when)}
    event.save()


def fulfillment_order_requested(dr_order_id: str) -> bool:
    instruction = Instruction.objects.filter(kind=CREATE_FULFILLMENT_ORDER, subject=f"order:{dr_order_id}").first()
    return (
        instruction is not None
        and instruction.state == Instruction.State.DONE
        and SandboxFulfillmentOrder.objects.filter(upstream_id=dr_order_id).exists()
    )


# --- missed webhooks -----------------------------------------------------------------------------


@live
def test_an_order_whose_webhooks_were_dropped_is_mirrored_and_its_fulfillment_order_requested(flow):
    flow.sku("rec-a")
    dr_order = place_unseen("rec-a", reviewed=True)
    assert not Order.objects.filter(dr_order_id=dr_order.dr_id).exists()

    summary = orders_reconcile()

    assert summary.errors == []
    assert summary.events_pulled == 2 and summary.events_already_held == 0
    pulled = WebhookEvent.objects.all()
    assert {event.type for event in pulled} == {"order.review_opened", "order.accepted"}
    assert {(event.source, event.state) for event in pulled} == {
        (WebhookEvent.Source.POLLED, WebhookEvent.State.PROCESSED)
    }
    order = Order.objects.get(dr_order_id=dr_order.dr_id)
    assert order.state == Order.State.ACCEPTED
    assert order.lines.get().quantity == 2
    assert fulfillment_order_requested(dr_order.dr_id)


@live
def test_a_second_run_changes_nothing(flow):
    flow.sku("rec-a")
    dr_order = place_unseen("rec-a")
    orders_reconcile()
    # What DR emitted because of the first run (the fulfillment order's creation) reaches us normally.
    control_update({"reset": True})
    flow.settle()

    def state():
        order = Order.objects.get(dr_order_id=dr_order.dr_id)
        lines = list(order.lines.values_list("pending", "shipped", "fulfilled", "cancel_requested", "cancelled"))
        return order.state, lines, Instruction.objects.count(), WebhookEvent.objects.count(), StateLog.objects.count()

    before = state()
    second = orders_reconcile()

    assert second.errors == []
    assert second.orders_checked == 1 and second.orders_changed == []
    assert second.events_pulled == 0 and second.events_already_held == 2  # order.accepted, fulfillment_order.pending
    assert state() == before


# --- the event window ----------------------------------------------------------------------------


@live
def test_a_first_run_pulls_the_last_three_days_only(flow):
    flow.sku("rec-a")
    dr_order = place_unseen("rec-a", reviewed=True)
    now = timezone.now()
    backdate(dr_order.dr_id, "order.review_opened", now - timedelta(days=4))
    backdate(dr_order.dr_id, "order.accepted", now - timedelta(days=2))

    summary = orders_reconcile(now=now)

    assert summary.events_since == now - FIRST_RUN_LOOKBACK
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["order.accepted"]
    assert Order.objects.get(dr_order_id=dr_order.dr_id).state == Order.State.ACCEPTED


@live
def test_a_later_run_pulls_from_the_newest_event_held_minus_the_safety_margin(flow):
    flow.sku("rec-a")
    flow.place(("rec-a", 1))  # delivered: these are the events we hold
    held = WebhookEvent.objects.count()
    newest = WebhookEvent.objects.order_by("-dr_created_at").values_list("dr_created_at", flat=True).first()
    partly_seen = place_unseen("rec-a", reviewed=True)
    backdate(partly_seen.dr_id, "order.review_opened", newest - SAFETY_MARGIN - timedelta(hours=1))
    late = place_unseen("rec-a", reviewed=True)  # created before the newest event we hold
    backdate(late.dr_id, "order.review_opened", newest - timedelta(hours=2))
    backdate(late.dr_id, "order.accepted", newest - timedelta(hours=1))

    summary = orders_reconcile()

    assert summary.events_since == newest - SAFETY_MARGIN
    assert summary.events_already_held == held
    pulled = set(WebhookEvent.objects.filter(source=WebhookEvent.Source.POLLED).values_list("order_id", "type"))
    assert pulled == {
        (partly_seen.dr_id, "order.accepted"),
        (late.dr_id, "order.review_opened"),
        (late.dr_id, "order.accepted"),
    }
    assert fulfillment_order_requested(partly_seen.dr_id) and fulfillment_order_requested(late.dr_id)


# --- DR failing for part of the work -------------------------------------------------------------


@live
def test_a_dr_outage_for_one_order_is_reported_and_the_others_are_reconciled(flow, no_client_retries):
    flow.sku("rec-a")
    failing = flow.place(("rec-a", 1), state="in_review")
    working = flow.place(("rec-a", 1), state="in_review")
    control_update({"drop_rate": 1.0})
    order_release(order_id=failing.dr_id)
    order_release(order_id=working.dr_id)
    deliver_due()
    control_update(
        {"next_calls": {"path": f"^/orders/{failing.dr_id}$", "regex": True, "method": "GET", "status": 503}}
    )

    summary = orders_reconcile()

    assert summary.orders_checked == 2
    assert summary.orders_changed == [working.dr_id]
    (error,) = summary.errors
    assert error.startswith(f"order {failing.dr_id}: GET /orders/{failing.dr_id}: 503")
    assert Order.objects.get(dr_order_id=working.dr_id).state == Order.State.ACCEPTED
    assert fulfillment_order_requested(working.dr_id)
    # The failing order's own GET failed, but its order.accepted came in with the pulled events.
    assert Order.objects.get(dr_order_id=failing.dr_id).state == Order.State.ACCEPTED
    assert fulfillment_order_requested(failing.dr_id)


@live
def test_an_events_outage_is_reported_and_the_open_orders_still_move_on(flow, no_client_retries):
    flow.sku("rec-a")
    dr_order = flow.place(("rec-a", 1), state="in_review")
    control_update({"drop_rate": 1.0})
    order_release(order_id=dr_order.dr_id)
    deliver_due()
    control_update({"next_calls": {"path": "/events", "method": "GET", "status": 503}})

    summary = orders_reconcile()

    (error,) = summary.errors
    assert error.startswith("events: GET /events: 503")
    assert summary.orders_changed == [dr_order.dr_id] and summary.events_pulled == 0
    # No event told us of the acceptance: comparing the order found it, and asked for the fulfillment order.
    assert Order.objects.get(dr_order_id=dr_order.dr_id).state == Order.State.ACCEPTED
    assert fulfillment_order_requested(dr_order.dr_id)


# --- the command and the task --------------------------------------------------------------------

DR_TEST_URL = "https://dr.test"


@pytest.fixture
def dr(settings, no_client_retries):
    settings.DR_API_BASE_URL = DR_TEST_URL
    with responses.RequestsMock() as mocked:
        yield mocked


@pytest.mark.django_db
def test_the_command_prints_the_summary(dr, capsys):
    dr.get(f"{DR_TEST_URL}/events", json={"hasMore": False, "data": []})

    call_command("reconcile")

    out = capsys.readouterr().out
    assert "orders checked: 0, changed: 0" in out
    assert "0 pulled, 0 already held" in out and "errors: 0" in out


@pytest.mark.django_db
def test_the_command_fails_when_part_of_the_work_failed(dr, capsys):
    dr.get(f"{DR_TEST_URL}/events", status=503, json={"type": "service_unavailable", "errors": []})

    with pytest.raises(CommandError, match="1 error"):
        call_command("reconcile")

    assert "events: GET /events: 503" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_task_returns_the_summary(dr):
    dr.get(f"{DR_TEST_URL}/events", json={"hasMore": False, "data": []})

    result = reconcile_orders.apply().get()

    assert result["orders_checked"] == 0 and result["events_pulled"] == 0 and result["errors"] == []
    assert result["events_since"].endswith("Z")


@pytest.mark.django_db
def test_events_are_asked_for_fewer_than_20_types_at_a_time_and_handled_oldest_first(dr):
    from urllib.parse import parse_qs, urlsplit

    from digitalriver.registry import handled_event_types

    def listed(request):
        asked = parse_qs(urlsplit(request.url).query)["types"]
        assert len(asked) < 20, f"DR refuses {len(asked)} types"
        events = []
        if "order.accepted" in asked:
            events.append({"id": "evt-new", "type": "order.accepted", "createdTime": "2026-11-20T11:00:00.000Z"})
        if "order.cancelled" in asked:
            events.append({"id": "evt-old", "type": "order.cancelled", "createdTime": "2026-11-20T10:00:00.000Z"})
        return 200, {}, json.dumps({"hasMore": False, "data": events})

    dr.add_callback(responses.GET, f"{DR_TEST_URL}/events", callback=listed)
    assert len(handled_event_types()) >= 20  # so the split is needed at all

    orders_reconcile()

    calls = [parse_qs(urlsplit(call.request.url).query)["types"] for call in dr.calls]
    assert len(calls) >= 2
    assert sorted(t for asked in calls for t in asked) == handled_event_types()
    held = list(WebhookEvent.objects.order_by("pk").values_list("dr_event_id", flat=True))
    assert held == ["evt-old", "evt-new"]  # stored (and so handled) oldest first across the calls


@pytest.mark.django_db
def test_an_open_refund_and_return_are_compared_with_dr_and_brought_up_to_date(dr):
    """A refund DR paid and a return DR's warehouse approved, both of whose events were missed."""
    from commerce.models import Refund
    from commerce.services import order_upsert
    from fulfillment.models import Notification, Return
    from tests.conftest import dr_order, fixture

    order = order_upsert(data=dr_order(state="complete"))
    paid = fixture("refund.json")
    refund = Refund.objects.create(
        order=order,
        reference=paid["metadata"]["refundReference"],
        dr_refund_id=paid["id"],
        kind=Refund.Kind.AMOUNT,
        currency="USD",
        amount=paid["amount"],
        state=Refund.State.PENDING,
    )
    ret = Return.objects.create(
        order=order, api=Return.Api.FULFILLMENT_RETURNS, dr_return_id="ret_5823594809", state=Return.State.CREATED
    )
    dr.get(f"{DR_TEST_URL}/refunds/{paid['id']}", json={**paid, "state": "succeeded", "refundedAmount": 12.5})
    approved = fixture("fulfillment_return_pending.json")
    dr.get(f"{DR_TEST_URL}/fulfillment-returns/ret_5823594809", json={**approved, "upstreamId": order.dr_order_id})
    dr.get(f"{DR_TEST_URL}/events", json={"hasMore": False, "data": []})

    summary = orders_reconcile()

    assert summary.reversals_checked == 2 and summary.errors == []
    assert sorted(summary.reversals_changed) == [f"refund {paid['id']}", "return ret_5823594809"]
    refund.refresh_from_db()
    ret.refresh_from_db()
    assert (refund.state, str(refund.refunded_amount)) == (Refund.State.SUCCEEDED, "12.50")
    assert ret.state == Return.State.PENDING and ret.location
    assert Notification.objects.filter(kind=Notification.Kind.REFUND_COMPLETED).count() == 1
