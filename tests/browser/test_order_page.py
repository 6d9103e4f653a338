"""Customer service opens an order that went through the real distributed flow with the sandbox and
reads its story on the order page."""

import pytest
from playwright.sync_api import expect

from catalog.models import Sku
from catalog.services import sku_create, skus_push
from commerce.models import Order
from digitalriver.services.outbox import outbox_sweep
from fulfillment.cancellations import order_cancel
from fulfillment.models import CancellationRequest, FulfillmentOrder
from sandbox.delivery import deliver_due
from sandbox.services.orders import Line, order_place
from sandbox.services.warehouse import cancellation_accept, warehouse_cancel, warehouse_ship

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COMMON = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "weight": 1, "weight_unit": "lb"}


def settle(rounds: int = 20) -> None:
    """Deliver the sandbox's events and send our instructions until nothing moves."""
    for _ in range(rounds):
        if not deliver_due() + outbox_sweep(ignore_backoff=True).sent:
            return
    raise AssertionError("the flow did not settle")


def push_sku(sku_id: str, name: str) -> None:
    values = {"name": name, "part_number": f"PN-{sku_id}", **COMMON}
    sku = sku_create(values={"sku_id": sku_id, "fulfillment_model": Sku.FulfillmentModel.DISTRIBUTED, **values})
    skus_push(skus=[sku])
    settle()
    assert Sku.objects.get(pk=sku.pk).sync_state == Sku.SyncState.SYNCED


@pytest.fixture
def shipped_and_cancelled_order(live_server, settings) -> Order:
    """Two distributed lines at the sandbox: 2 of 3 lamps shipped and captured, the warehouse cancels
    the one chair, and customer service the third lamp."""
    settings.DR_API_BASE_URL = f"{live_server.url}/sandbox/api"
    settings.SANDBOX_DEFAULT_WEBHOOK_URL = f"{live_server.url}/webhooks/digitalriver/"
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    push_sku("lamp-1", "Desk lamp")
    push_sku("chair-1", "Office chair")
    placed = order_place(lines=[Line(sku_id="lamp-1", quantity=3), Line(sku_id="chair-1", quantity=1)])
    settle()
    order = Order.objects.get(dr_order_id=placed.dr_id)
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    lamp = fulfillment_order.lines.get(order_line__dr_sku_id="lamp-1")
    chair = fulfillment_order.lines.get(order_line__dr_sku_id="chair-1")
    warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(lamp.dr_item_id, 2)])
    settle()
    warehouse_cancel(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(chair.dr_item_id, 1)])
    settle()
    # The customer no longer wants the third lamp: customer service cancels it.
    [request] = order_cancel(
        order=order, items=[(lamp.order_line.dr_item_id, 1)], reason="the customer changed their mind"
    )
    settle()
    cancellation_accept(cancellation_id=CancellationRequest.objects.get(pk=request.pk).dr_cancellation_id)
    settle()
    return Order.objects.get(pk=order.pk)


def test_the_order_page_tells_the_capture_and_the_cancellation(
    page, live_server, log_in, screenshot, shipped_and_cancelled_order
):
    order = shipped_and_cancelled_order
    page.set_viewport_size({"width": 1280, "height": 1000})
    log_in()
    page.goto(f"{live_server.url}/admin/commerce/order/")
    assert screenshot("order-list").exists()
    page.click(f"text={order.dr_order_id}")

    timeline = page.locator("#order-timeline")
    timeline.wait_for(state="visible")
    # By default the story: the shipment with its goods, the cancellations, the money moving.
    assert timeline.locator("tr", has_text="Shipped 2 units of Desk lamp").count() == 1
    assert timeline.locator("tr", has_text="Payment captured").count() >= 1
    assert timeline.locator("tr.timeline-call, tr.timeline-attempt, tr.timeline-instruction").count() == 0
    assert timeline.locator("tr", has_text="DR said:").count() == 0
    page.click("#timeline-toggle")
    expect(page.locator("#timeline-toggle")).to_have_text("Show the story only")
    timeline = page.locator("#order-timeline")
    captured = timeline.locator("tr", has_text="Captured 2 units of Desk lamp (shipment")
    assert captured.filter(has_text="DR accepted").count() == 1
    cancelled = timeline.locator("tr", has_text="Cancelled 1 unit of Office chair (payment released)")
    assert cancelled.filter(has_text="DR accepted").count() == 1
    assert timeline.locator("tr", has_text="DR said: fulfillment_order.cancelled").count() >= 1
    asked = timeline.locator("tr", has_text="Cancellation of 1 unit of Desk lamp requested")
    assert asked.filter(has_text="the customer changed their mind").count() == 1
    assert timeline.locator("tr", has_text="Cancellation of 1 unit of Desk lamp: payment released").count() == 1
    assert timeline.locator("tr", has_text="POST /fulfillments → 201").count() == 3  # two releases, one capture

    lines = page.locator("#order-lines")
    assert lines.locator("tr", has_text="Desk lamp").locator("td.num").all_inner_texts()[:8] == [
        "3",  # ordered
        "0",  # pending
        "0",  # backordered
        "2",  # shipped
        "2\n2 captured",  # fulfilled, and what DR reported of the capture
        "0",  # cancel requested
        "1",  # cancelled
        "0",  # still open
    ]
    assert "Distributed (our warehouse, DR coordinates)" in lines.locator("tr", has_text="Desk lamp").inner_text()
    assert "Complete" in page.locator("#order-header .order-state").inner_text()
    page.locator("#timeline").scroll_into_view_if_needed()
    assert screenshot("order-timeline").exists()


def test_operations_toggles_the_technical_timeline_and_customer_service_sees_no_link_that_would_403(
    page, live_server, log_in, screenshot, shipped_and_cancelled_order
):
    order = shipped_and_cancelled_order
    page.set_viewport_size({"width": 1280, "height": 1000})
    url = f"{live_server.url}/admin/commerce/order/{order.pk}/change/"

    log_in("olga", groups=["Operations"], superuser=False)
    page.goto(url)
    page.locator("#timeline").scroll_into_view_if_needed()
    assert screenshot("order-timeline-story").exists()
    story = page.locator("#order-timeline tbody tr").count()
    page.click("#timeline-toggle")
    technical = page.locator("#order-timeline")
    expect(technical.locator("tr.timeline-call").first).to_be_visible()
    assert technical.locator("tr", has_text="POST /fulfillments → 201").count() == 3
    assert technical.locator("tbody tr").count() > story
    # Operations may open what the technical entries point at.
    expect(technical.locator("a", has_text="call")).not_to_have_count(0)
    page.context.clear_cookies()

    log_in("carol", groups=["Customer service"], superuser=False)
    for address in (url, f"{url}?technical=1"):
        page.goto(address)
        hrefs = page.locator("#order-timeline a").evaluate_all("links => links.map(link => link.href)")
        assert hrefs, "the timeline links to what customer service may open"
        for href in hrefs:
            assert page.request.get(href).status != 403, href
        for label in ("call", "event", "instruction"):
            expect(
                page.locator("#order-timeline a", has_text=f"{label} \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}")
            ).to_have_count(0)
