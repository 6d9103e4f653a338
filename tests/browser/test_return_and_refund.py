"""A customer-service lead walks a return and its refund on the order page: "Start a return", its
confirmation in plain words; the sandbox's warehouse approves and receives the keyboard; "Refund the
received units" opens the refund already filled with them, the confirmation says how much goes back
to which card; the bank completes, and the page shows the refund refunded and the line's refunded
amount."""

import re

import pytest
from playwright.sync_api import expect

from commerce.models import Order, Refund
from fulfillment.models import FulfillmentOrder, Return
from sandbox.services.control import control_update
from sandbox.services.returns import fulfillment_return_approve, fulfillment_return_receive
from sandbox.services.warehouse import warehouse_ship
from tests.conftest import restore_roles

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shipped_keyboards(flow) -> Order:
    """Two keyboards (distributed) shipped by the sandbox's warehouse and captured."""
    restore_roles()  # an earlier transactional test's flush emptied the groups
    control_update({"refund_delay_seconds": 0})
    flow.sku("kb-1", name="Mechanical keyboard")
    order = Order.objects.get(dr_order_id=flow.place(("kb-1", 2)).dr_id)
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    line = fulfillment_order.lines.get()
    warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(line.dr_item_id, 2)])
    flow.settle()
    order = Order.objects.get(pk=order.pk)
    assert order.lines.get().captured == 2
    return order


def test_a_lead_returns_a_keyboard_and_refunds_it(page, live_server, log_in, screenshot, flow, shipped_keyboards):
    order = shipped_keyboards
    keyboard = order.lines.get()
    page.set_viewport_size({"width": 1280, "height": 1000})
    log_in("lena", groups=["Customer service", "Refunds"], superuser=False)
    order_url = f"{live_server.url}/admin/commerce/order/{order.pk}/change/"
    page.goto(order_url)

    # Start a return: the form, then the confirmation in plain words.
    page.click("#start-return")
    expect(page.locator("#action-lines tr", has_text="Mechanical keyboard").locator("td.limit")).to_have_text("2")
    page.fill(f"#id_line_{keyboard.pk}", "1")
    page.fill("#id_reason", "Two keys do not register")
    page.click("#action-review")
    plan = page.locator("#action-plan")
    expect(plan).to_contain_text(
        "Ask DR's warehouse to take back 1 unit of Mechanical keyboard; the customer gets the return address by "
        "email once the warehouse approves"
    )
    expect(page.locator("#plan-calls")).to_contain_text("POST /fulfillment-returns")  # folded, for operations
    assert not Return.objects.exists(), "nothing is asked before the confirmation"
    screenshot("return-confirm")
    page.click("#action-confirm")
    expect(page.locator(".messagelist .success")).to_contain_text("1 unit of Mechanical keyboard")
    expect(page).to_have_url(re.compile(r"#returns$"))

    # The sandbox's warehouse approves the return, then receives the keyboard.
    flow.settle()
    ret = Return.objects.get()
    fulfillment_return_approve(return_id=ret.dr_return_id)
    flow.settle()
    fulfillment_return_receive(return_id=ret.dr_return_id)
    flow.settle()
    page.goto(order_url)
    row = page.locator(f'#order-returns tr[data-return="{ret.pk}"]')
    expect(row).to_contain_text("Received")
    expect(row.locator("td.num")).to_have_text(["1", "1"])  # asked, received
    returned_cell = page.locator(f'#order-lines tr[data-item="{keyboard.dr_item_id}"] td.num').nth(8)
    expect(returned_cell).to_have_text("1")
    screenshot("return-received")

    # Refund the received units: the form comes filled with them.
    row.locator("a.refund-received").click()
    expect(page.locator("#id_what input[value=units]")).to_be_checked()
    expect(page.locator(f"#id_line_{keyboard.pk}")).to_have_value("1")
    expect(page.locator("#id_reason")).to_have_value("Returned: Two keys do not register")
    page.click("#action-review")
    amount = "21.59 USD"  # the sandbox's price of one keyboard, 19.99, and 8 % tax
    expect(page.locator("#action-plan")).to_contain_text(
        f"Refund {amount} to {order.payment_method} for 1 \u00d7 Mechanical keyboard"
    )
    screenshot("refund-confirm")
    page.click("#action-confirm")
    expect(page.locator(".messagelist .success")).to_contain_text("Refund sent to Digital River")

    # The bank completes the refund: the page shows it refunded, on the refund and on the line.
    flow.settle()
    refund = Refund.objects.get()
    assert (refund.state, refund.for_return, refund.requested_by.username) == (
        Refund.State.SUCCEEDED,
        ret.dr_return_id,
        "lena",
    )
    page.goto(order_url)
    refund_row = page.locator(f'#order-refunds tr[data-refund="{refund.pk}"]')
    expect(refund_row).to_contain_text("Refunded")
    expect(refund_row.locator("td.num")).to_have_text([amount, amount])  # asked, refunded
    expect(page.locator(f'#order-lines tr[data-item="{keyboard.dr_item_id}"]')).to_contain_text(
        f"refunded {refund.refunded_amount}"
    )
    expect(row.locator("a.refund-received")).to_have_count(0)  # nothing left to refund for this return
    screenshot("return-refunded")
