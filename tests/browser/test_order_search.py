"""An agent at a 1280 px screen finds an order by the tracking number the customer reads out, and by
part of its id, and every column of the order list is on screen."""

import pytest

from tests.fulfillment.order_stories import order_data, story

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog")]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def search(page, term: str) -> list[str]:
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    return page.locator("#result_list tbody th a").all_inner_texts()


def test_an_agent_finds_an_order_by_tracking_number_and_by_part_of_its_id(page, live_server, log_in, screenshot):
    from commerce.services import order_upsert

    shipped = story(dr_order_id="231388420336", extras=0)  # shipped with tracking number 1Z999AA10123456784
    order_upsert(data=order_data(dr_order_id="240000000777", lines=1, upstreamId="WEB-777"))
    log_in("agent", groups=["Customer service"], superuser=False)

    page.goto(f"{live_server.url}/admin/commerce/order/")
    assert sorted(page.locator("#result_list tbody th a").all_inner_texts()) == ["231388420336", "240000000777"]
    # Every column is on screen: the table ends before the window's edge, and the page does not scroll sideways.
    table_right = page.evaluate("document.querySelector('#result_list').getBoundingClientRect().right")
    assert table_right <= 1280
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.locator("#result_list thead", has_text="Placed").is_visible()

    assert search(page, "1Z999AA10123456784") == [shipped.dr_order_id]
    screenshot("order-search-tracking-number")
    assert search(page, "0777") == ["240000000777"]
    assert search(page, "388420") == [shipped.dr_order_id]

    page.click(f"#result_list tbody th a:text('{shipped.dr_order_id}')")
    page.wait_for_selector(f"text=Order {shipped.dr_order_id}")
    assert f"/admin/commerce/order/{shipped.pk}/change/" in page.url
