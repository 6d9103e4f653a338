import json

import pytest
from django.test import Client

from tests.conftest import make_event, signed_headers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_finds_a_failed_event_and_reads_its_error(page, live_server, log_in, screenshot, settings):
    from digitalriver import registry

    def broken_handler(event):
        raise RuntimeError("stock service unreachable")

    registry.register_event_handler("test.broken_handler", broken_handler)
    try:
        body = json.dumps(make_event("test.broken_handler", {"id": "240000000777"})).encode()
        response = Client().post(
            "/webhooks/digitalriver/", data=body, content_type="application/json", **signed_headers(body)
        )
        assert response.status_code == 202
    finally:
        registry.unregister_event_handler("test.broken_handler")

    log_in()
    page.goto(f"{live_server.url}/admin/digitalriver/webhookevent/?state__exact=failed")
    page.click("text=test.broken_handler")
    page.locator(".readonly", has_text="RuntimeError: stock service unreachable").first.wait_for(state="visible")
    assert "240000000777" in page.content()
    assert screenshot("operator-failed-event").exists()
