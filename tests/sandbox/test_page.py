"""The sandbox page and the sandbox_order command."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.models import FulfillmentOrder, InventoryLevel, NetworkRule, NetworkSettings, Order
from sandbox.services import catalog, warehouse

from .conftest import sku_body


@pytest.fixture
def pushed(transactional_db):
    catalog.sku_put(sku_id="dist-1", body=sku_body(partNumber="PN-D"))
    catalog.inventory_item_create(body={"id": "dist-1", "partNumber": "PN-D"})
    catalog.sku_put(sku_id="orch-1", body=sku_body(partNumber="PN-M", managedFulfillment="DRGlobalFulfillment"))


def act(client, action, **data):
    response = client.post(f"/sandbox/actions/{action}/", data, follow=True)
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_page_needs_staff_outside_debug(client, pushed):
    assert client.get("/sandbox/").status_code == 403
    assert client.post("/sandbox/actions/release/", {"order_id": "1"}).status_code == 403


def test_page_drives_the_storefront_and_the_warehouse(admin_client, pushed):
    messages = act(admin_client, "place-order", lines="dist-1:2 orch-1:1", state="in_review", email="p@example.com")
    order = Order.objects.get()
    assert messages == [f"Order {order.dr_id} placed (in_review)."]
    act(admin_client, "release", order_id=order.dr_id)
    order.refresh_from_db()
    assert order.state == "accepted"
    managed = FulfillmentOrder.objects.get(managed=True)
    line = managed.items.get()
    act(admin_client, "backorder", fulfillment_order_id=managed.dr_id, item_id=line.dr_id, quantity=1, days=3)
    act(admin_client, "restock", fulfillment_order_id=managed.dr_id, item_id=line.dr_id)
    act(admin_client, "fail-next-capture")
    assert NetworkSettings.objects.get().fail_next_captures == 1
    act(
        admin_client, "ship", fulfillment_order_id=managed.dr_id, item_id=line.dr_id, quantity=1, tracking_company="DHL"
    )
    order.refresh_from_db()
    assert order.items.get(sku_id="orch-1").fulfilled_quantity == 1
    assert order.charges.get().operations.get().failure_code == "failed-request"
    page = admin_client.get("/sandbox/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in (order.dr_id, managed.dr_id, "failed-request", "order.accepted", "fulfillment.created", "DHL"):
        assert text in html


def test_page_cancellation_stock_and_network_forms(admin_client, pushed):
    order_id = act(admin_client, "place-order", lines="dist-1:3")[0].split()[1]
    item = Order.objects.get(dr_id=order_id).items.get()
    fo = warehouse.fulfillment_order_create(
        body={
            "upstreamId": order_id,
            "upstreamOrderTime": "2026-11-20T10:00:00Z",
            "currency": "USD",
            "shipTo": {"address": {"line1": "1 Main", "city": "X", "country": "US"}},
            "shippingChoice": {"id": "SG"},
            "items": [{"inventoryItemId": "dist-1", "quantity": 3, "upstreamId": item.dr_id}],
        }
    )
    line = fo.items.get()
    request = warehouse.cancellation_create(
        body={"fulfillmentOrderId": fo.dr_id, "items": [{"fulfillmentOrderItemId": line.dr_id, "quantity": 2}]}
    )
    assert request.dr_id in admin_client.get("/sandbox/").content.decode()
    act(admin_client, "accept-cancellation", cancellation_id=request.dr_id, **{f"accept_{line.dr_id}": "1"})
    request.refresh_from_db()
    line.refresh_from_db()
    assert request.state == "accepted" and request.items.get().quantity_accepted == 1 and line.cancelled == 1
    act(admin_client, "cancel", fulfillment_order_id=fo.dr_id, item_id=line.dr_id, quantity=1)
    line.refresh_from_db()
    assert line.cancelled == 2
    errors = act(admin_client, "cancel", fulfillment_order_id=fo.dr_id, item_id=line.dr_id, quantity=5)
    assert "1 units are open" in errors[0]
    act(admin_client, "stock", inventory_item_id="dist-1", location_id="sandbox-warehouse-1", available_quantity=7)
    assert InventoryLevel.objects.get(inventory_item__dr_id="dist-1").available_quantity == 7
    act(
        admin_client,
        "network",
        latency_ms=5,
        error_rate="0.1",
        drop_rate="0",
        duplicate_rate="0.5",
        delay_rate="0",
        delay_seconds=5,
        backoff_seconds="1",
        max_attempts=3,
        reorder="on",
        rule_path="/skus",
        rule_status=503,
        rule_count=2,
        latency_jitter_ms=0,
        error_after_processing=0,
        fail_next_captures=0,
    )
    net = NetworkSettings.objects.get()
    assert (net.latency_ms, net.error_rate, net.duplicate_rate, net.reorder) == (5, 0.1, 0.5, True)
    assert NetworkRule.objects.get().remaining == 2
    act(admin_client, "network", reset="1")
    assert NetworkSettings.objects.get().latency_ms == 0 and not NetworkRule.objects.exists()
    assert "not SKU:QTY" in act(admin_client, "place-order", lines="dist-1")[0]


def test_sandbox_order_command(pushed):
    out = StringIO()
    call_command(
        "sandbox_order",
        "--sku",
        "dist-1:2",
        "--sku",
        "orch-1:1",
        "--state",
        "in_review",
        "--email",
        "cli@example.com",
        stdout=out,
    )
    order = Order.objects.get(dr_id=out.getvalue().strip())
    assert order.state == "in_review" and order.email == "cli@example.com" and order.items.count() == 2
    with pytest.raises(CommandError, match="never pushed"):
        call_command("sandbox_order", "--sku", "ghost:1", stdout=StringIO())
