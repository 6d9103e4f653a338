"""Customer service cancels one unit of a distributed line from the order page, through the form and
its confirmation, which says first how much money is released; the warehouse accepts at the sandbox,
and the page tells the request accepted and the payment released."""

import re

import pytest
from playwright.sync_api import expect

from commerce.models import Order
from digitalriver.models import ApiCall
from fulfillment.models import CancellationRequest
from sandbox.services.warehouse import cancellation_accept
from tests.conftest import restore_roles

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_service_reads_the_money_released_before_confirming_and_sees_it_released(
    page, live_server, log_in, screenshot, flow
):
    restore_roles()  # an earlier transactional test's flush emptied the groups
    flow.sku("lamp-1", name="Desk lamp")
    flow.sku("chair-1", name="Office chair")
    order = Order.objects.get(dr_order_id=flow.place(("lamp-1", 3), ("chair-1", 1)).dr_id)
    lamp = order.lines.get(dr_sku_id="lamp-1")

    page.set_viewport_size({"width": 1280, "height": 1000})
    log_in("alice", groups=["Customer service"], superuser=False)
    page.goto(f"{live_server.url}/admin/commerce/order/{order.pk}/change/")
    page.click("#cancel-items")
    lamp_row = page.locator("#action-lines tr", has_text="Desk lamp")
    expect(lamp_row.locator("td.limit")).to_have_text("3")
    page.fill(f"#id_line_{lamp.pk}", "1")
    page.fill("#id_reason", "The customer ordered one lamp too many")
    page.click("#action-review")

    # The first thing the confirmation says is the money: one lamp, tax included.
    released = f"{lamp.price_of(1)} {order.currency}"
    money = page.locator("#action-money")
    expect(money).to_have_text(f"Payment to be released: {released}")
    plan = page.locator("#action-plan")
    assert money.bounding_box()["y"] < plan.bounding_box()["y"] < page.locator("#action-confirm").bounding_box()["y"]
    expect(plan.locator(".plan-effect")).to_have_text(
        f"Release {released} for 1 \N{MULTIPLICATION SIGN} Desk lamp once the warehouse accepts; "
        "the warehouse may still ship it if it already left"
    )
    expect(plan).to_contain_text("Ask the warehouse to cancel 1 unit of Desk lamp")
    expect(plan).not_to_contain_text("Office chair")
    # The DR call is there for operations, folded away, not what the agent reads.
    calls = page.locator("#plan-calls")
    expect(calls.locator("li")).to_be_hidden()
    expect(calls).to_contain_text("POST /fulfillment-cancellations")
    # Nothing is stored or sent to DR before the confirmation.
    assert not CancellationRequest.objects.exists()
    assert not ApiCall.objects.filter(path__contains="fulfillment-cancellations").exists()
    screenshot("cancel-items-confirm")
    page.click("#action-confirm")
    expect(page.locator(".messagelist .success")).to_contain_text(
        "Cancellation sent: Ask the warehouse to cancel 1 unit of Desk lamp."
    )
    expect(page).to_have_url(re.compile(r"#cancellations$"))

    flow.settle()
    request = CancellationRequest.objects.get()
    assert (request.requested_by.username, request.state) == ("alice", CancellationRequest.State.SUBMITTED)
    cancellation_accept(cancellation_id=request.dr_cancellation_id)
    flow.settle()
    page.reload()

    progress = page.locator(f'#order-cancellations tr[data-cancellation="{request.pk}"] .cancellation-progress')
    expect(progress.locator("li.step-done .step-label")).to_have_text(
        ["Requested", "Sent to DR", "Warehouse accepted", "Payment released"]
    )
    timeline = page.locator("#order-timeline")
    expect(
        timeline.locator(
            "tr",
            has_text="Customer service (alice) asked to cancel 1 unit of Desk lamp: "
            "the warehouse accepted it; payment released",
        )
    ).to_have_count(1)
    expect(
        timeline.locator("tr", has_text="Cancellation of 1 unit of Desk lamp: the warehouse accepted it")
    ).to_have_count(1)
    expect(timeline.locator("tr", has_text="Cancellation of 1 unit of Desk lamp: payment released")).to_have_count(1)
    # The story leaves the machinery out; the technical entries are one click away.
    expect(timeline.locator("tr", has_text="Cancelled 1 unit of Desk lamp (payment released)")).to_have_count(0)
    page.click("#timeline-toggle")
    expect(
        page.locator("#order-timeline tr", has_text="Cancelled 1 unit of Desk lamp (payment released) — DR accepted")
    ).to_have_count(1)
    lamp_counters = page.locator("#order-lines tr", has_text="Desk lamp").locator("td.num")
    assert lamp_counters.all_inner_texts()[5:7] == ["0", "1"]  # cancel requested, cancelled
    assert screenshot("cancel-items").exists()
