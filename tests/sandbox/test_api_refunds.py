"""Contract: /refunds, the bank's answers (test cards, the delivery loop), invoices, credit memos and files."""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from sandbox.delivery import deliver_due
from sandbox.models import Event, FileLink, Order, Refund
from sandbox.services import disputes, refunds
from tests.conftest import fixture

from .conftest import assert_keys_like
from .test_api_catalog import error_of
from .test_api_orders import fulfill, items_by_sku

# 2 units at 19.99 + 8 % tax (1.60 each) = 43.18, plus shipping 5.00 + 0.40 = 48.58.
TOTAL = 48.58


def captured_order(api, place, skus, quantity=2, **kwargs):
    order = place((skus["distributed"], quantity), **kwargs)
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": quantity}).status_code == 201
    return order, item


def types(order_id):
    return list(Event.objects.filter(order_id=order_id).order_by("id").values_list("type", flat=True))


def settle():
    """The delivery loop's pass once the bank's delay is over."""
    deliver_due(now=timezone.now() + timedelta(minutes=5))


def test_order_refund_is_pending_then_completes_from_the_delivery_loop(api, place, skus, receiver):
    order, _ = captured_order(api, place, skus)
    response = api.post(
        "/refunds", {"orderId": order.dr_id, "currency": "USD", "amount": 10, "reason": "late", "metadata": {"x": 1}}
    )
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["id"].startswith("re_") and refund["state"] == "pending"
    assert refund["amount"] == 10 and refund["refundedAmount"] == 0 and refund["metadata"] == {"x": 1}
    before = api.get(f"/orders/{order.dr_id}").json()
    assert before["availableToRefundAmount"] == pytest.approx(TOTAL - 10) and before["refundedAmount"] == 0
    assert before["payment"]["charges"][0]["refunds"][0]["state"] == "pending"
    assert "refund.pending" in types(order.dr_id) and "refund.complete" not in types(order.dr_id)
    deliver_due()  # not due yet: the bank takes refund_delay_seconds
    assert api.get(f"/refunds/{refund['id']}").json()["state"] == "pending"
    settle()
    done = api.get(f"/refunds/{refund['id']}").json()
    assert done["state"] == "succeeded" and done["refundedAmount"] == 10
    assert done["charges"][0]["refunds"][0]["state"] == "complete"
    assert_keys_like(
        {k: v for k, v in done.items() if k != "items"},
        {k: v for k, v in fixture("refund.json").items() if k not in ("items", "reason", "metadata")},
    )
    after = api.get(f"/orders/{order.dr_id}").json()
    assert after["refundedAmount"] == 10 and after["availableToRefundAmount"] == pytest.approx(TOTAL - 10)
    assert after["state"] == "complete"  # partly refunded: the state stays
    assert after["payment"]["charges"][0]["refunded"] is True
    assert len(after["creditMemoPDFs"]) == 1 and len(after["invoicePDFs"]) == 1
    sequence = types(order.dr_id)
    tail = sequence[sequence.index("refund.complete") :]
    assert tail == ["refund.complete", "order.charge.refund.complete", "order.refunded", "order.credit_memo.created"]
    listed = api.get("/refunds", orderId=order.dr_id).json()
    assert listed["hasMore"] is False and [r["id"] for r in listed["data"]] == [refund["id"]]
    assert api.get("/refunds", orderId="other").json()["data"] == []
    assert api.get("/refunds/re_nope").status_code == 404


def test_a_full_refund_returns_the_order(api, place, skus):
    order, _ = captured_order(api, place, skus)
    refund = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "percent": 100}).json()
    assert refund["amount"] == pytest.approx(TOTAL)
    assert api.get(f"/orders/{order.dr_id}").json()["availableToRefundAmount"] == 0
    refunds.refund_complete(refund_id=refund["id"])  # the page's button
    after = api.get(f"/orders/{order.dr_id}").json()
    assert after["state"] == "returned" and "returned" in after["stateTransitions"]
    assert after["refundedAmount"] == pytest.approx(TOTAL)
    event = Event.objects.filter(type="order.refunded", order_id=order.dr_id).get()
    assert event.envelope["data"]["object"]["state"] == "returned"


def test_item_refunds_and_types(api, place, skus):
    order, item = captured_order(api, place, skus)
    one_unit = api.post(
        "/refunds",
        {"orderId": order.dr_id, "currency": "USD", "items": [{"itemId": item["id"], "quantity": 1, "percent": 100}]},
    ).json()
    assert one_unit["amount"] == pytest.approx(21.59) and one_unit["items"][0]["quantity"] == 1
    line = items_by_sku(api, order.dr_id)[skus["distributed"]]
    assert line["availableToRefundAmount"] == pytest.approx(43.18 - 21.59)
    shipping = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "type": "shipping", "percent": 100})
    assert shipping.status_code == 201 and shipping.json()["amount"] == pytest.approx(5.40)
    again = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "type": "shipping", "amount": 1})
    assert error_of(again) == ("bad_request", [("invalid_parameter", "amountRequested")])
    tax = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "type": "tax", "percent": 50})
    assert error_of(tax) == ("bad_request", [("invalid_parameter", "percentRequested")])
    assert tax.json()["errors"][0]["message"] == "Only full tax refunds are supported."
    full_tax = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "type": "tax", "percent": 100})
    assert full_tax.status_code == 201 and full_tax.json()["type"] == "tax"
    assert full_tax.json()["amount"] == pytest.approx(3.20 + 0.40)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"currency": "EUR", "amount": 1}, ("invalid_parameter", "currency")),
        ({"currency": "USD", "amount": 1000}, ("invalid_parameter", "amountRequested")),
        ({"currency": "USD", "amount": 1, "percent": 5}, ("invalid_parameter", "percent")),
        ({"currency": "USD"}, ("missing_parameter", "amount")),
        ({"currency": "USD", "percent": 120}, ("invalid_parameter", "percent")),
        ({"currency": "USD", "amount": 1, "type": "fees"}, ("invalid_parameter", "type")),
        ({"currency": "USD", "amount": 1, "refundAll": True}, ("unknown_parameter", "refundAll")),
        ({"amount": 1}, ("missing_parameter", "currency")),
    ],
)
def test_refund_validation(api, place, skus, body, expected):
    order, _ = captured_order(api, place, skus)
    response = api.post("/refunds", {"orderId": order.dr_id, **body})
    assert response.status_code == 400
    assert expected in error_of(response)[1]
    if expected[1] == "amountRequested":
        assert response.json()["errors"][0]["message"] == refunds.TOO_MUCH


def test_nothing_captured_nothing_to_refund_and_unknown_order(api, place, skus):
    order = place((skus["distributed"], 1))
    response = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "percent": 100})
    assert error_of(response) == ("bad_request", [("invalid_parameter", "amountRequested")])
    assert api.post("/refunds", {"orderId": "404404", "currency": "USD", "amount": 1}).status_code == 404


@pytest.mark.parametrize(
    ("card", "states", "reason"),
    [
        ("4000 0000 0000 4111", ["refund.pending", "refund.failed"], True),
        ("4556 6025 6424 0839", ["refund.pending", "refund.pending_information", "refund.failed"], True),
        ("4111 1111 1111 1111", ["refund.pending", "refund.complete"], False),
    ],
)
def test_test_cards_decide_the_bank_answer(api, place, skus, card, states, reason, receiver):
    order, _ = captured_order(api, place, skus, card=card)
    refund = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "amount": 5}).json()
    settle()
    if "refund.pending_information" in states:
        waiting = api.get(f"/refunds/{refund['id']}").json()
        assert waiting["state"] == "pending_information"
        assert waiting["tokenInformation"]["token"] and waiting["tokenInformation"]["expiresTime"]
        assert api.get(f"/orders/{order.dr_id}").json()["availableToRefundAmount"] == pytest.approx(TOTAL - 5)
        settle()
    seen = [t for t in types(order.dr_id) if t.startswith("refund.")]
    assert seen == states
    assert [t for t in receiver.types() if t.startswith("refund.")] == states  # delivered, and checked
    final = api.get(f"/refunds/{refund['id']}").json()
    assert bool(final.get("failureReason")) is reason
    if reason:
        assert final["state"] == "failed" and final["refundedAmount"] == 0
        # A failed refund gives its amount back.
        assert api.get(f"/orders/{order.dr_id}").json()["availableToRefundAmount"] == pytest.approx(TOTAL)
        assert "order.charge.refund.failed" in types(order.dr_id)


def test_the_capture_failing_card(api, place, skus):
    order = place((skus["distributed"], 1), card="4000000000004103")
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1}).status_code == 201
    body = api.get(f"/orders/{order.dr_id}").json()
    assert body["capturedAmount"] == 0 and body["payment"]["sources"][0]["creditCard"]["lastFourDigits"] == "4103"
    assert "order.charge.capture.failed" in types(order.dr_id)
    assert "order.invoice.created" not in types(order.dr_id)


def test_page_buttons_fail_or_complete_only_open_refunds(api, place, skus):
    order, _ = captured_order(api, place, skus)
    refund = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "amount": 2}).json()
    refunds.refund_fail(refund_id=refund["id"], reason="closed account")
    assert api.get(f"/refunds/{refund['id']}").json()["failureReason"] == "closed account"
    with pytest.raises(refunds.RefundError):
        refunds.refund_complete(refund_id=refund["id"])
    assert Refund.objects.get(dr_id=refund["id"]).settle_at is None


def test_dispute_blocks_refunds_and_fulfillments_until_resolved(api, place, skus):
    order = place((skus["distributed"], 2))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1}).status_code == 201
    disputes.dispute_open(order_id=order.dr_id)
    body = api.get(f"/orders/{order.dr_id}").json()
    assert body["state"] == "dispute" and "dispute" in body["stateTransitions"]
    blocked = fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1})
    assert blocked.status_code == 409
    assert blocked.json()["errors"] == [
        {
            "code": "order_not_submitted",
            "parameter": "orderId",
            "message": f"Order '{order.dr_id}' has not been submitted.",
        }
    ]
    refused = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "amount": 1})
    assert error_of(refused) == ("bad_request", [("invalid_parameter", "order")])
    assert refused.json()["errors"][0]["message"] == refunds.IN_DISPUTE
    disputes.dispute_resolve(order_id=order.dr_id)
    assert api.get(f"/orders/{order.dr_id}").json()["state"] == "accepted"
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1}).status_code == 201
    assert types(order.dr_id).count("order.dispute") == 1 and "order.dispute.resolved" in types(order.dr_id)


def test_chargeback_lowers_what_can_be_refunded(api, place, skus):
    order, _ = captured_order(api, place, skus)
    disputes.chargeback(order_id=order.dr_id, amount=Decimal("8.58"))
    assert api.get(f"/orders/{order.dr_id}").json()["availableToRefundAmount"] == pytest.approx(40)
    event = Event.objects.filter(type="order.chargeback", order_id=order.dr_id).get()
    assert event.envelope["data"]["object"]["id"] == order.dr_id
    too_much = api.post("/refunds", {"orderId": order.dr_id, "currency": "USD", "amount": 41})
    assert error_of(too_much)[1] == [("invalid_parameter", "amountRequested")]


# --- invoices, credit memos, files and links ----------------------------------------------------------


def test_invoice_file_and_content_need_the_key(api, place, skus, live_server):
    order, _ = captured_order(api, place, skus)
    event = Event.objects.filter(type="order.invoice.created", order_id=order.dr_id).get()
    obj = event.envelope["data"]["object"]
    assert_keys_like(event.envelope, fixture("event_order_invoice_created.json"))
    assert set(obj) == {"id", "fileId", "orderId", "customerId", "purpose", "invoiceURL"}
    assert obj["id"] == obj["fileId"] and obj["purpose"] == "customer_invoice" and obj["orderId"] == order.dr_id
    assert obj["invoiceURL"].endswith(f"/files/{obj['id']}/content")
    pdfs = api.get(f"/orders/{order.dr_id}").json()["invoicePDFs"]
    assert pdfs == [{"id": obj["id"], "url": obj["invoiceURL"], "liveMode": False}]
    file = api.get(f"/files/{obj['id']}").json()
    assert (
        file["purpose"] == "customer_invoice" and file["type"] == "pdf" and file["size"] > 100 and "links" not in file
    )
    content = api.get(f"/files/{obj['id']}/content")
    assert content.status_code == 200 and content.headers["Content-Type"] == "application/pdf"
    assert content.content.startswith(b"%PDF-") and content.content.rstrip().endswith(b"%%EOF")
    assert order.dr_id.encode() in content.content
    anonymous = requests.get(f"{live_server.url}/sandbox/api/files/{obj['id']}/content", timeout=10)
    assert anonymous.status_code == 401 and not anonymous.content.startswith(b"%PDF")
    assert api.get("/files/nope").status_code == 404 and api.get("/files/nope/content").status_code == 404


def test_no_invoice_twice(api, place, skus):
    order = place((skus["distributed"], 2))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1})
    fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1})
    assert types(order.dr_id).count("order.invoice.created") == 1


def test_file_links_serve_until_they_expire(api, place, skus, live_server):
    order, _ = captured_order(api, place, skus)
    file_id = api.get(f"/orders/{order.dr_id}").json()["invoicePDFs"][0]["id"]
    expires = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = api.post("/file-links", {"fileId": file_id, "expiresTime": expires})
    assert response.status_code == 201, response.text
    link = response.json()
    assert_keys_like(link, fixture("file_link.json"))
    assert link["fileId"] == file_id and link["expired"] is False and link["url"].startswith(live_server.url)
    public = requests.get(link["url"], timeout=10)
    assert public.status_code == 200 and public.content.startswith(b"%PDF-")
    assert api.get(f"/files/{file_id}").json()["links"][0]["id"] == link["id"]
    assert api.get(f"/file-links/{link['id']}").json()["id"] == link["id"]
    FileLink.objects.filter(dr_id=link["id"]).update(expires_time=timezone.now() - timedelta(seconds=1))
    assert requests.get(link["url"], timeout=10).status_code == 404
    assert api.get(f"/file-links/{link['id']}").json()["expired"] is True
    past = api.post("/file-links", {"fileId": file_id, "expiresTime": "2020-01-01T00:00:00Z"})
    assert error_of(past) == ("bad_request", [("invalid_parameter", "expiresTime")])
    assert error_of(api.post("/file-links", {"fileId": file_id}))[1] == [("missing_parameter", "expiresTime")]
    assert api.post("/file-links", {"fileId": "ghost", "expiresTime": expires}).status_code == 404


def test_no_invoice_for_a_zero_total(api, skus, place):
    order = place((skus["distributed"], 1))
    Order.objects.filter(pk=order.pk).update(total_amount=Decimal("0"))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1})
    assert "order.invoice.created" not in types(order.dr_id)
