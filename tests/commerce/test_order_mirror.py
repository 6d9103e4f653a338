"""The order mirror follows DR and never moves backwards, whatever order snapshots arrive in."""

import copy
import json
from decimal import Decimal

import pytest

from catalog.models import Sku
from commerce.models import Charge, Order
from commerce.services import order_upsert
from tests.conftest import dr_order, fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def skus():
    common = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "part_number": "P-1"}
    return [
        Sku.objects.create(sku_id="dist-1", name="Distributed widget", **common),
        Sku.objects.create(
            sku_id="orch-1", name="Managed widget", fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED, **common
        ),
    ]


def test_first_sight_mirrors_fields_lines_and_charges(skus):
    order = order_upsert(data=dr_order())
    assert order.state == Order.State.ACCEPTED
    assert order.upstream_id == "WEB-10001"
    assert order.customer_name == "Ada Lovelace"
    assert order.total_amount == Decimal("70.17")
    lines = {line.dr_sku_id: line for line in order.lines.all()}
    assert lines["dist-1"].quantity == 2 and lines["dist-1"].fulfillment_model == "distributed"
    assert lines["orch-1"].fulfillment_model == "orchestrated"
    assert lines["dist-1"].amount == Decimal("39.98") and lines["dist-1"].tax_amount == Decimal("3.20")
    assert not order.unknown_sku
    charge = Charge.objects.get()
    assert charge.state == "capturable" and charge.amount == Decimal("70.17")


def test_an_unknown_sku_flags_the_order_and_keeps_the_line(skus):
    data = dr_order()
    data["items"][1]["skuId"] = "not-in-catalog"
    order = order_upsert(data=data)
    assert order.unknown_sku
    line = order.lines.get(dr_sku_id="not-in-catalog")
    assert line.sku is None and line.fulfillment_model == ""


def test_upsert_is_idempotent(skus):
    order_upsert(data=dr_order())
    order_upsert(data=dr_order())
    assert Order.objects.count() == 1
    assert Order.objects.get().lines.count() == 2


def test_an_older_snapshot_changes_nothing(skus):
    newer = dr_order(state="fulfilled", updatedTime="2026-11-21T10:00:00.000Z")
    newer["stateTransitions"]["fulfilled"] = "2026-11-21T10:00:00.000Z"
    order_upsert(data=newer)
    older = dr_order(state="accepted", email="old@example.com", updatedTime="2026-11-20T10:00:00.000Z")
    order = order_upsert(data=older)
    assert order.state == Order.State.FULFILLED
    assert order.email == "ada@example.com"


def test_the_state_never_moves_back_along_the_main_path_even_without_timestamps(skus):
    complete = dr_order(state="complete", stateTransitions={})
    complete.pop("updatedTime")
    order_upsert(data=complete)
    accepted = copy.deepcopy(complete)
    accepted["state"] = "accepted"
    assert order_upsert(data=accepted).state == Order.State.COMPLETE


def test_a_side_state_is_followed_by_its_timestamp(skus):
    order_upsert(data=dr_order())
    cancelled = dr_order(state="cancelled", updatedTime="2026-11-20T11:00:00.000Z")
    cancelled["stateTransitions"]["cancelled"] = "2026-11-20T11:00:00.000Z"
    order = order_upsert(data=cancelled)
    assert order.state == Order.State.CANCELLED
    assert order.state_changed_at.isoformat().startswith("2026-11-20T11:00")


def test_a_late_snapshot_without_updated_time_cannot_undo_a_later_side_state(skus):
    """Accepted at 10:00, cancelled at 11:00; then a snapshot from 10:00 arrives late, without
    updatedTime: only its stateTransitions say how old its state is, and that keeps it out."""
    order_upsert(data=dr_order())
    cancelled = dr_order(state="cancelled", updatedTime="2026-11-20T11:00:00.000Z")
    cancelled["stateTransitions"]["cancelled"] = "2026-11-20T11:00:00.000Z"
    order_upsert(data=cancelled)
    late = dr_order()
    late.pop("updatedTime")
    assert late["stateTransitions"]["accepted"].startswith("2026-11-20T10:00")
    order = order_upsert(data=late)
    assert order.state == Order.State.CANCELLED
    assert order.state_changed_at.isoformat().startswith("2026-11-20T11:00")


def test_state_changes_are_logged_for_the_timeline(skus):
    from django_fsm_log.models import StateLog

    pending = dr_order(state="pending_payment")
    order = order_upsert(data=pending)
    order_upsert(data=dr_order(updatedTime="2026-11-20T10:05:00.000Z"))
    logs = StateLog.objects.for_(order)
    assert [log.state for log in logs] == ["accepted"]
    assert logs[0].description == "reported by DR"


def test_card_secrets_are_not_kept(skus):
    data = dr_order()
    data["payment"]["sources"][0]["clientSecret"] = "src_secret_abc"
    order = order_upsert(data=data)
    assert "src_secret_abc" not in json.dumps(order.raw)


def test_a_charge_event_brings_the_order_amounts_along(skus):
    from commerce.services import charge_upsert

    order = order_upsert(data=dr_order())
    charge = fixture("charge.json")
    charge_upsert(order=order, data=charge)
    order = Order.objects.get(pk=order.pk)
    assert order.captured_amount == Decimal("26.99")
    order_upsert(data=dr_order(updatedTime="2026-11-20T12:30:00.000Z", capturedAmount=26.99))
    assert Order.objects.get(pk=order.pk).captured_amount == Decimal("26.99")


def test_every_mirrored_field_comes_from_drs_order(skus):
    order = order_upsert(data=dr_order())
    assert (order.checkout_id, order.fraud_state, order.currency, order.email, order.locale) == (
        "chk_5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e",
        "passed",
        "USD",
        "ada@example.com",
        "en_US",
    )
    assert order.ship_to["address"]["city"] == "Minnetonka" and order.bill_to["name"] == "Ada Lovelace"
    assert order.shipping_choice["serviceLevel"] == "SG"
    assert (order.subtotal, order.total_tax, order.total_shipping) == (
        Decimal("59.97"),
        Decimal("5.20"),
        Decimal("5.00"),
    )
    assert order.dr_created_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert order.dr_updated_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert order.fetched_at is not None and order.raw["id"] == "231388420336"
    widget = order.lines.get(dr_sku_id="dist-1")
    assert (widget.name, widget.tax_rate, widget.dr_state) == ("Distributed widget", Decimal("0.08"), "paid")

    later = dr_order(
        updatedTime="2026-11-20T11:00:00.000Z",
        capturedAmount=19.99,
        cancelledAmount=1.5,
        refundedAmount=0.5,
        availableToRefundAmount=19.49,
    )
    order = order_upsert(data=later)
    assert (order.captured_amount, order.cancelled_amount, order.refunded_amount, order.available_to_refund_amount) == (
        Decimal("19.99"),
        Decimal("1.50"),
        Decimal("0.50"),
        Decimal("19.49"),
    )


def test_missing_fields_fall_back_to_what_dr_sent_elsewhere(skus):
    data = dr_order(email=None, currency=None, upstreamId=None, checkoutId=None, fraudState=None, locale=None)
    data["shipTo"]["name"] = ""
    for key in ("subtotal", "createdTime", "updatedTime"):
        data.pop(key)
    data["items"][0].pop("tax")
    data["items"][0]["productDetails"] = {}
    order = order_upsert(data=data)
    assert (order.email, order.customer_name, order.currency) == ("ada@example.com", "Ada Lovelace", "")
    assert (order.upstream_id, order.checkout_id, order.fraud_state, order.locale) == ("", "", "", "")
    assert order.subtotal == Decimal("0.00") and order.dr_created_at is None and order.dr_updated_at is None
    widget = order.lines.get(dr_sku_id="dist-1")
    assert (widget.name, widget.tax_amount, widget.tax_rate) == ("Distributed widget", Decimal("0.00"), Decimal("0"))

    data = dr_order(shipTo={}, billTo={"name": "Grace Hopper"}, updatedTime="2026-11-20T11:00:00.000Z")
    order = order_upsert(data=data)
    assert (order.email, order.customer_name, order.currency) == ("ada@example.com", "Grace Hopper", "USD")
    assert order.dr_created_at.isoformat() == "2026-11-20T10:00:00+00:00"
    data = dr_order(email=None, shipTo={}, billTo={}, currency=None, updatedTime="2026-11-20T12:00:00.000Z")
    data.pop("createdTime")
    order = order_upsert(data=data)
    assert (order.email, order.customer_name, order.currency) == ("", "", "USD")
    assert order.dr_created_at.isoformat() == "2026-11-20T10:00:00+00:00"


def test_a_newer_snapshot_without_updated_time_keeps_the_last_known_one(skus):
    order_upsert(data=dr_order(updatedTime="2026-11-20T11:00:00.000Z"))
    undated = dr_order(email="new@example.com")
    undated.pop("updatedTime")
    order = order_upsert(data=undated)
    assert order.email == "new@example.com"
    assert order.dr_updated_at.isoformat() == "2026-11-20T11:00:00+00:00"


def test_a_line_keeps_the_fulfillment_model_it_was_first_seen_with(skus):
    order_upsert(data=dr_order())
    Sku.objects.filter(sku_id="dist-1").update(fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY)
    order = order_upsert(data=dr_order(updatedTime="2026-11-20T11:00:00.000Z"))
    assert order.lines.get(dr_sku_id="dist-1").fulfillment_model == "distributed"


def test_a_known_sku_clears_the_unknown_flag_once_it_is_in_the_catalog(skus):
    data = dr_order()
    data["items"][1]["skuId"] = "later-1"
    assert order_upsert(data=data).unknown_sku
    Sku.objects.create(sku_id="later-1", name="Later", tax_code="4512.1", eccn="EAR99", country_of_origin="US")
    data["updatedTime"] = "2026-11-20T11:00:00.000Z"
    order = order_upsert(data=data)
    assert not Order.objects.get(pk=order.pk).unknown_sku
    assert order.lines.get(dr_sku_id="later-1").sku.sku_id == "later-1"


@pytest.mark.parametrize(
    ("state", "transitions"),
    [("in_review", {"inReview": "2026-11-20T09:30:00.000Z"}), ("in_review", {"in_review": "2026-11-20T09:30:00.000Z"})],
)
def test_a_state_is_timed_by_its_transition_under_drs_camel_case_name_or_its_own(skus, state, transitions):
    order = order_upsert(data=dr_order(state=state, stateTransitions=transitions))
    assert order.state_changed_at.isoformat() == "2026-11-20T09:30:00+00:00"


def test_without_a_transition_time_the_snapshot_time_dates_the_state(skus):
    order = order_upsert(data=dr_order(state="in_review", stateTransitions={}))
    assert order.state_changed_at.isoformat() == "2026-11-20T10:00:00+00:00"


def test_an_unknown_or_unchanged_state_is_not_a_transition(skus):
    from django_fsm_log.models import StateLog

    order = order_upsert(data=dr_order())
    order = order_upsert(data=dr_order(state="something_new", updatedTime="2026-11-20T11:00:00.000Z"))
    assert order.state == Order.State.ACCEPTED
    order = order_upsert(data=dr_order(updatedTime="2026-11-20T12:00:00.000Z"))
    assert [log.state for log in StateLog.objects.for_(order)] == ["accepted"]
    assert order.state_changed_at.isoformat() == "2026-11-20T10:00:01+00:00"


def test_a_side_state_at_the_same_time_as_the_last_move_is_followed(skus):
    order_upsert(data=dr_order())
    blocked = dr_order(state="blocked", updatedTime="2026-11-20T10:00:01.000Z")
    blocked["stateTransitions"]["blocked"] = "2026-11-20T10:00:01.000Z"
    assert order_upsert(data=blocked).state == Order.State.BLOCKED


def test_a_charge_snapshot_older_than_the_one_held_changes_nothing(skus):
    from commerce.models import ChargeOperation
    from commerce.services import charge_upsert

    order = order_upsert(data=dr_order())
    # DR's Charge schema names no updatedTime; where a snapshot carries one, an older one changes nothing.
    charge = {**fixture("charge.json"), "updatedTime": "2026-11-20T12:00:00.000Z"}
    charge["captures"][0].update(failureCode="card_declined", failureMessage="Declined")
    charge_upsert(order=order, data=charge)
    stored = Charge.objects.get()
    assert (stored.state, stored.captured, stored.refunded, stored.currency) == ("capturable", True, False, "USD")
    assert stored.dr_updated_at.isoformat() == "2026-11-20T12:00:00+00:00"
    capture = ChargeOperation.objects.get()
    assert (capture.kind, capture.amount, capture.state) == ("capture", Decimal("26.99"), "complete")
    assert (capture.failure_code, capture.failure_message) == ("card_declined", "Declined")
    assert capture.fulfillment_id == "ful_6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
    assert capture.dr_created_at.isoformat() == "2026-11-20T12:00:00+00:00"

    older = {**charge, "updatedTime": "2026-11-20T11:00:00.000Z", "state": "failed", "captured": False}
    older["cancels"] = [{"id": "can-1", "amount": 10, "state": "complete"}]
    charge_upsert(order=order, data=older)
    stored = Charge.objects.get()
    assert (stored.state, stored.captured) == ("capturable", True)
    assert not ChargeOperation.objects.filter(kind="cancel").exists()

    newer = {**charge, "updatedTime": "2026-11-20T13:00:00.000Z", "refunded": True}
    newer["refunds"] = [{"id": "ref-1", "amount": 5, "state": "complete"}]
    newer["cancels"] = [{"id": "can-1", "amount": 10, "state": "pending"}]
    charge_upsert(order=order, data=newer)
    assert Charge.objects.get().refunded
    order = Order.objects.get(pk=order.pk)
    assert (order.captured_amount, order.refunded_amount, order.cancelled_amount) == (
        Decimal("26.99"),
        Decimal("5.00"),
        Decimal("0.00"),
    )


def test_order_amounts_from_charges_only_grow(skus):
    from commerce.services import charge_upsert

    order = order_upsert(data=dr_order(updatedTime="2026-11-20T11:00:00.000Z", capturedAmount=50))
    charge = fixture("charge.json")
    charge_upsert(order=order, data=charge)  # its captures add up to less than DR's own figure
    assert Order.objects.get(pk=order.pk).captured_amount == Decimal("50.00")


def test_an_order_another_handler_inserted_first_is_updated_not_inserted_twice(skus, monkeypatch):
    """Two of a new order's events handled at once: both find no order, one INSERT goes in and the
    other finds the key taken (ON CONFLICT DO NOTHING) and updates the row it then reads, locked."""
    from commerce import services

    order_upsert(data=dr_order(state="pending_payment", updatedTime="2026-11-20T09:59:00.000Z"))
    looked_up = []

    def not_there_yet(queryset, **lookup):  # what the second handler saw before the first committed
        looked_up.append(lookup)
        return None

    monkeypatch.setattr(services, "locked_row", not_there_yet)
    order = order_upsert(data=dr_order())

    assert looked_up == [{"dr_order_id": order.dr_order_id}]
    assert Order.objects.count() == 1 and order.pk == Order.objects.get().pk
    assert order.state == Order.State.ACCEPTED and Order.objects.get().state == Order.State.ACCEPTED
    assert order.lines.count() == 2 and Charge.objects.count() == 1
