"""A 409 `item_fulfilled` / `item_cancelled` names one line: that line is settled, the others are sent
again, and nothing is counted that did not move. DR is faked at the client's edge with `responses`."""

import json

import pytest
import responses

from commerce.models import Order
from digitalriver.models import Instruction
from digitalriver.services.outbox import instruction_enqueue
from fulfillment.kinds import POST_FULFILLMENT

pytestmark = pytest.mark.django_db

DR = "https://dr.conflicts.test"


@pytest.fixture
def dr(settings, accepted_order):
    settings.DR_API_BASE_URL = DR
    settings.DR_CLIENT_MAX_RETRIES = 0
    with responses.RequestsMock() as mocked:
        yield mocked


def conflict(code: str, position: int, item_id: str) -> dict:
    return {
        "type": "conflict",
        "errors": [{"code": code, "parameter": f"items[{position}].itemId", "message": f"Resource '{item_id}' is x."}],
    }


def send(django_capture_on_commit_callbacks, items: list[dict]) -> Instruction:
    with django_capture_on_commit_callbacks(execute=True):
        instruction = instruction_enqueue(
            kind=POST_FULFILLMENT, subject="order:231388420336", payload={"orderId": "231388420336", "items": items}
        )
    return Instruction.objects.get(pk=instruction.pk)


def lines() -> dict[str, tuple[int, int]]:
    order = Order.objects.get(dr_order_id="231388420336")
    return {line.dr_sku_id: (line.fulfilled, line.cancelled) for line in order.lines.all()}


def test_a_line_already_fulfilled_is_settled_and_the_other_line_is_sent_again(dr, django_capture_on_commit_callbacks):
    widget, managed = "143040030336", "143040040336"
    dr.post(f"{DR}/fulfillments", status=409, json=conflict("item_fulfilled", 0, widget))
    dr.post(f"{DR}/fulfillments", status=201, json={"id": "ful_1", "orderId": "231388420336", "items": []})

    instruction = send(
        django_capture_on_commit_callbacks,
        [{"itemId": widget, "quantity": 1}, {"itemId": managed, "quantity": 1}],
    )

    assert instruction.state == Instruction.State.DONE
    second = json.loads(dr.calls[1].request.body)
    assert second["items"] == [{"itemId": managed, "quantity": 1}]  # sent again without the settled line
    assert instruction.result["settledBefore"] == [{"itemId": widget, "code": "item_fulfilled"}]
    assert lines() == {"dist-1": (1, 0), "orch-1": (1, 0)}
    assert not Order.objects.get().capture_failed


def test_a_capture_on_a_cancelled_line_flags_the_order_and_counts_only_the_other(
    dr, django_capture_on_commit_callbacks
):
    widget, managed = "143040030336", "143040040336"
    dr.post(f"{DR}/fulfillments", status=409, json=conflict("item_cancelled", 1, managed))
    dr.post(f"{DR}/fulfillments", status=201, json={"id": "ful_1", "orderId": "231388420336", "items": []})

    send(django_capture_on_commit_callbacks, [{"itemId": widget, "quantity": 1}, {"itemId": managed, "quantity": 1}])

    assert lines() == {"dist-1": (1, 0), "orch-1": (0, 0)}  # no money claimed for the cancelled line
    assert Order.objects.get().capture_failed


def test_a_release_of_a_line_dr_already_captured_releases_nothing_and_flags_the_order(
    dr, django_capture_on_commit_callbacks
):
    widget = "143040030336"
    dr.post(f"{DR}/fulfillments", status=409, json=conflict("item_fulfilled", 0, widget))

    instruction = send(django_capture_on_commit_callbacks, [{"itemId": widget, "cancelQuantity": 1}])

    assert instruction.state == Instruction.State.DONE and len(dr.calls) == 1
    assert lines()["dist-1"] == (0, 0)
    assert Order.objects.get().cancellation_rejected


def test_a_line_conflict_naming_no_line_of_several_is_a_refusal_for_a_person(dr, django_capture_on_commit_callbacks):
    widget, managed = "143040030336", "143040040336"
    unnamed = {"type": "conflict", "errors": [{"code": "item_fulfilled", "parameter": "itemId", "message": "x"}]}
    dr.post(f"{DR}/fulfillments", status=409, json=unnamed)

    instruction = send(
        django_capture_on_commit_callbacks,
        [{"itemId": widget, "quantity": 1}, {"itemId": managed, "quantity": 1}],
    )

    assert instruction.state == Instruction.State.FAILED
    assert lines() == {"dist-1": (0, 0), "orch-1": (0, 0)}
    assert Order.objects.get().capture_failed
