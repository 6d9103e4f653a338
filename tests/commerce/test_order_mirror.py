"""The order mirror follows DR and never moves backwards, whatever order snapshots arrive in."""

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.models import Sku
from commerce.models import Charge, Order
from commerce.services import order_upsert

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dr"

pytestmark = pytest.mark.django_db


def dr_order(**changes) -> dict:
    data = json.loads((FIXTURES / "order.json").read_text())
    data.update(changes)
    return data


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
    assert logs[0].description == "DR: accepted"


def test_card_secrets_are_not_kept(skus):
    data = dr_order()
    data["payment"]["sources"][0]["clientSecret"] = "src_secret_abc"
    order = order_upsert(data=data)
    assert "src_secret_abc" not in json.dumps(order.raw)


def test_a_charge_event_brings_the_order_amounts_along(skus):
    from commerce.services import charge_upsert

    order = order_upsert(data=dr_order())
    charge = json.loads((FIXTURES / "charge.json").read_text())
    charge_upsert(order=order, data=charge)
    order = Order.objects.get(pk=order.pk)
    assert order.captured_amount == Decimal("26.99")
    order_upsert(data=dr_order(updatedTime="2026-11-20T12:30:00.000Z", capturedAmount=26.99))
    assert Order.objects.get(pk=order.pk).captured_amount == Decimal("26.99")
