"""An operator opens the operations dashboard after a week of traffic through the real flow.

Orders are placed at the sandbox, shipped by its warehouse and captured through our outbox, with the
failures a week brings: a capture DR declines, a capture DR refuses, an event that cannot be handled,
a DR outage leaving an instruction waiting, a backorder. The flow runs now; each round's rows are
then moved back in time by the same amount, as if that round had happened hours or days ago, so the
charts have a week to draw.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.db.models import F, Max

from commerce.models import ChargeOperation, Order
from digitalriver.models import Instruction, WebhookEvent
from digitalriver.services.inbox import webhook_event_store
from fulfillment.models import FulfillmentOrder, Notification
from sandbox.delivery import deliver_due
from sandbox.services.control import control_update
from sandbox.services.warehouse import warehouse_backorder, warehouse_ship
from tests.conftest import Flow, make_event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The times each model keeps, moved back together so a round stays consistent.
TIMES = {
    WebhookEvent: ["received_at", "dr_created_at", "processed_at"],
    Instruction: ["created_at", "next_attempt_at", "finished_at"],
    ChargeOperation: ["dr_created_at"],
    Order: ["dr_created_at"],
    Notification: ["created_at"],
}
# Hours ago of each round of ordinary orders, and how many lamps each ships.
ROUNDS = [(150, 3), (128, 1), (100, 2), (76, 4), (53, 2), (30, 3), (21, 1), (14, 2), (8, 3), (4, 1), (1, 2)]


def high_water_marks() -> dict:
    return {model: model.objects.aggregate(last=Max("pk"))["last"] or 0 for model in TIMES}


def move_back(marks: dict, hours: int) -> None:
    """Move the rows written since ``marks`` back by ``hours``."""
    for model, fields in TIMES.items():
        model.objects.filter(pk__gt=marks[model]).update(**{f: F(f) - timedelta(hours=hours) for f in fields})


def ship_all(flow: Flow, dr_order_id: str, *, settle: bool = True) -> None:
    fulfillment_order = FulfillmentOrder.objects.get(order__dr_order_id=dr_order_id)
    items = [
        (line.dr_item_id, line.order_line.quantity) for line in fulfillment_order.lines.select_related("order_line")
    ]
    warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=items)
    if settle:
        flow.settle()


@pytest.fixture
def a_week_of_traffic(live_server, settings):
    settings.DR_API_BASE_URL = f"{live_server.url}/sandbox/api"
    settings.SANDBOX_DEFAULT_WEBHOOK_URL = f"{live_server.url}/webhooks/digitalriver/"
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    flow = Flow(live_server)
    flow.sku("lamp-1", name="Desk lamp")
    flow.sku("chair-1", name="Office chair")

    for hours, lamps in ROUNDS:
        marks = high_water_marks()
        for lines in ([("lamp-1", lamps)], [("lamp-1", 1), ("chair-1", 1)]):
            ship_all(flow, flow.place(*lines).dr_id)
        move_back(marks, hours)

    # Five hours ago DR declined a capture (order.charge.capture.failed).
    marks = high_water_marks()
    control_update({"fail_next_captures": 1})
    ship_all(flow, flow.place(("chair-1", 2)).dr_id)
    move_back(marks, 5)

    # Two hours ago DR refused a capture outright: the instruction failed for good.
    marks = high_water_marks()
    control_update({"next_calls": {"path": "/fulfillments", "method": "POST", "status": 400}})
    ship_all(flow, flow.place(("lamp-1", 2)).dr_id)
    move_back(marks, 2)

    # An hour ago a charge event for an order DR does not know could not be handled.
    marks = high_water_marks()
    charge = {"id": "ch_unknown", "orderId": "999999999999", "amount": 10, "currency": "USD", "state": "capturable"}
    payload = make_event("order.charge.capture.complete", charge, event_id=str(uuid.uuid4()))
    webhook_event_store(payload=payload, body=json.dumps(payload), headers={}, source=WebhookEvent.Source.WEBHOOK)
    move_back(marks, 1)

    # Now: a backorder, and DR answering 503 leaves a capture waiting for its retry.
    backordered = flow.place(("chair-1", 3))
    fulfillment_order = FulfillmentOrder.objects.get(order__dr_order_id=backordered.dr_id)
    warehouse_backorder(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id,
        item_id=fulfillment_order.lines.get().dr_item_id,
        quantity=3,
    )
    flow.settle()
    control_update({"next_calls": {"path": "/fulfillments", "method": "POST", "status": 503, "count": 50}})
    ship_all(flow, flow.place(("lamp-1", 1)).dr_id, settle=False)
    while deliver_due():
        pass


def test_an_operator_reads_a_week_on_the_dashboard(page, live_server, log_in, screenshot, a_week_of_traffic):
    assert Order.objects.filter(capture_failed=True).count() == 2
    assert WebhookEvent.objects.filter(state=WebhookEvent.State.FAILED).count() == 1
    assert Instruction.objects.filter(state=Instruction.State.FAILED).count() == 1
    assert Instruction.objects.filter(state=Instruction.State.RETRY_WAIT).count() == 1

    log_in("operator", groups=["Operations"], superuser=False)
    page.click("text=Operations dashboard")
    page.wait_for_selector("#operations-dashboard")

    assert page.locator('[data-flag="capture_failed"] .ops-count').inner_text() == "2"
    assert page.locator('[data-flag="backordered"] .ops-count').inner_text() == "1"
    assert page.locator('[data-count="events-failed"] .ops-count').inner_text() == "1"
    assert page.locator('[data-count="instructions-failed"] .ops-count').inner_text() == "1"
    assert page.locator('[data-count="instructions-waiting"] .ops-count').inner_text() == "1"
    assert page.locator("svg.ops-svg").count() == 6
    # A week of rounds: every chart of the week has bars on several days.
    daily_events = page.locator('[data-chart="events"] .ops-chart-daily rect')
    assert daily_events.count() >= 7
    assert screenshot("operations-dashboard").exists()

    page.click('[data-flag="capture_failed"]')
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 2
