"""Customer service's order screens: find an order, read every section and the timeline, refresh
it from DR, never edit it, and pay the same number of queries for a big order as for a small one."""

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import responses
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django_fsm_log.models import StateLog

from catalog.models import Sku
from commerce.models import Order
from commerce.services import charge_upsert, order_upsert
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
from fulfillment.cancellations import cancellation_answered, order_cancel, units_released
from fulfillment.kinds import REQUEST_CANCELLATION
from fulfillment.models import CancellationRequest, FulfillmentOrderLine, Notification, Shipment
from fulfillment.order_timeline import order_timeline
from fulfillment.services import (
    POST_FULFILLMENT,
    dr_fulfillment_recorded,
    fulfillment_order_upsert,
    shipment_reported,
)
from tests.conftest import make_event, restore_roles

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dr"
T0 = parse_datetime("2026-11-20T10:00:00Z")

pytestmark = pytest.mark.django_db


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def catalog():
    common = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "part_number": "P-1"}
    Sku.objects.create(sku_id="dist-1", name="Distributed widget", **common)
    Sku.objects.create(sku_id="orch-1", name="Managed", fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED, **common)


def order_data(*, dr_order_id="231388420336", lines=2, **changes) -> dict:
    """DR's order fixture under another id, with ``lines`` lines: the fixture's two, then more widgets."""
    data = fixture("order.json")
    items = data["items"][:lines]
    for number in range(len(items), lines):
        items.append({**copy.deepcopy(data["items"][0]), "productDetails": {"name": f"Widget {number}"}})
    for number, item in enumerate(items):
        item["id"] = f"{dr_order_id}-{number}"
    data["payment"]["charges"][0]["id"] = f"chg-{dr_order_id}"
    return {**data, "id": dr_order_id, "items": items, **changes}


def story(*, dr_order_id="231388420336", lines=2, extras=1) -> Order:
    """An order with a fulfillment order, one shipment, a failed capture, and ``extras`` events,
    instructions, attempts and calls, at known times (each source a minute after the last)."""
    order = order_upsert(data=order_data(dr_order_id=dr_order_id, lines=lines))
    StateLog.objects.for_(order).update(timestamp=T0)
    distributed = list(order.lines.filter(fulfillment_model=Sku.FulfillmentModel.DISTRIBUTED))
    fulfillment_order = fixture("fulfillment_order.json")
    fulfillment_order.update(id=f"fo-{dr_order_id}", upstreamId=dr_order_id)
    fulfillment_order["items"] = [
        {
            **fulfillment_order["items"][0],
            "id": f"foi-{line.dr_item_id}",
            "upstreamId": line.dr_item_id,
            "quantity": line.quantity,
            "pending": line.quantity - 1,
            "backordered": 1,
            "availableTime": "2026-12-01T00:00:00Z",
        }
        for line in distributed
    ]
    fulfillment_order_upsert(order=order, data=fulfillment_order, created_by_us=True)
    shipment = fixture("shipment.json")
    shipment.update(id=f"shp-{dr_order_id}-4f1b9d7e", fulfillmentOrderId=f"fo-{dr_order_id}")
    shipment["fulfillmentOrderUpstreamId"] = dr_order_id
    shipment["items"] = [
        {"id": f"si-{line.dr_item_id}", "fulfillmentOrderItemUpstreamId": line.dr_item_id, "quantity": 1}
        for line in distributed
    ]
    shipment_reported(data=shipment)
    charge = fixture("charge.json")
    charge.update(id=f"chg-{dr_order_id}", orderId=dr_order_id)
    charge["captures"].append(
        {
            "id": "cap-failed",
            "createdTime": "2026-11-20T12:30:00Z",
            "amount": 19.99,
            "state": "failed",
            "failureMessage": "Card declined by the issuer",
        }
    )
    charge_upsert(order=order, data=charge)
    Order.objects.filter(pk=order.pk).update(capture_failed=True)

    subject = f"order:{dr_order_id}"
    capture = Instruction.objects.get(kind=POST_FULFILLMENT, subject=subject)
    Instruction.objects.filter(pk=capture.pk).update(created_at=T0 + timedelta(minutes=2))
    for number in range(extras):
        event = make_event("fulfillment_order.shipped", {"id": "x"}, event_id=f"evt-{dr_order_id}-{number}")
        WebhookEvent.objects.create(
            dr_event_id=event["id"],
            type=event["type"],
            state=WebhookEvent.State.PROCESSED,
            order_id=dr_order_id,
            received_at=T0 + timedelta(minutes=1),
            body=json.dumps(event),
            payload=event,
        )
        Attempt.objects.create(
            instruction=capture,
            number=number + 1,
            started_at=T0 + timedelta(minutes=3),
            duration_ms=84,
            outcome=Attempt.Outcome.SUCCEEDED,
            http_status=201,
            request_id=f"req-{number}",
        )
        ApiCall.objects.create(
            method="POST",
            path="/fulfillments",
            status=201,
            duration_ms=84,
            subject=subject,
            started_at=T0 + timedelta(minutes=4),
        )
    # The shipment and backorder emails the story caused, after everything else.
    Notification.objects.filter(order=order).update(created_at=T0 + timedelta(minutes=5))
    return Order.objects.get(pk=order.pk)


def change_url(order: Order) -> str:
    return reverse("admin:commerce_order_change", args=[order.pk])


# --- the list ----------------------------------------------------------------------------------------


def test_changelist_filters_by_state_flag_and_needs_attention(admin_client):
    flagged = story()
    calm = order_upsert(data=order_data(dr_order_id="231388420999", upstreamId="WEB-2", state="complete"))
    url = reverse("admin:commerce_order_changelist")

    def shown(**query):
        response = admin_client.get(url, query)
        assert response.status_code == 200
        return {order.dr_order_id for order in response.context["cl"].result_list}

    assert shown() == {flagged.dr_order_id, calm.dr_order_id}
    assert shown(state__exact="complete") == {calm.dr_order_id}
    assert shown(capture_failed__exact="1") == {flagged.dr_order_id}
    assert shown(backordered__exact="1") == {flagged.dr_order_id}
    assert shown(needs_attention="yes") == {flagged.dr_order_id}
    assert shown(needs_attention="no") == {calm.dr_order_id}


def test_changelist_searches_dr_id_upstream_id_email_and_name(admin_client):
    ada = story()
    grace = order_upsert(
        data=order_data(
            dr_order_id="231388420999",
            upstreamId="WEB-2",
            email="grace@example.com",
            shipTo={**fixture("order.json")["shipTo"], "name": "Grace Hopper"},
        )
    )
    url = reverse("admin:commerce_order_changelist")

    def found(term):
        return {order.dr_order_id for order in admin_client.get(url, {"q": term}).context["cl"].result_list}

    assert found(ada.dr_order_id) == {ada.dr_order_id}
    assert found("WEB-2") == {grace.dr_order_id}
    assert found("grace@") == {grace.dr_order_id}
    assert found("lovelace") == {ada.dr_order_id}


def test_changelist_shows_flags_state_and_total_with_currency(admin_client):
    story()
    html = admin_client.get(reverse("admin:commerce_order_changelist")).content.decode()
    assert "⚑ capture failed" in html and "⚑ backordered" in html
    assert 'class="order-state order-state-accepted"' in html
    assert "70.17 USD" in html and "WEB-10001" in html and "Ada Lovelace" in html


def test_changelist_query_count_does_not_grow_with_orders(admin_client):
    url = reverse("admin:commerce_order_changelist")
    for number in range(3):
        order_upsert(data=order_data(dr_order_id=f"2313884{number:05d}"))
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for number in range(3, 30):
        order_upsert(data=order_data(dr_order_id=f"2313884{number:05d}"))
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)
    assert len(response.context["cl"].result_list) == 30
    assert len(many) == len(few)


# --- the page ----------------------------------------------------------------------------------------


def test_the_page_shows_header_flags_addresses_and_shipping(admin_client):
    order = story()
    response = admin_client.get(change_url(order))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Capture failed:" in html and "Card declined by the issuer" in html
    assert "Backordered:</strong> 1 unit of Distributed widget expected" in html
    assert "10380 Bren Road W" in html and "Minnetonka" in html
    assert "Standard Ground" in html and "service level SG" in html
    assert "Refresh from DR" in html


def test_the_page_shows_every_line_counter_and_the_fulfillment_order(admin_client):
    order = story()
    page = admin_client.get(change_url(order)).context["page"]
    lines = {line.dr_sku_id: line for line in page.lines}
    widget = lines["dist-1"]
    assert (widget.quantity, widget.pending, widget.backordered, widget.shipped) == (2, 1, 1, 1)
    assert (widget.fulfilled, widget.cancel_requested, widget.cancelled) == (0, 0, 0)
    assert widget.fulfillment_model == "distributed" and lines["orch-1"].fulfillment_model == "orchestrated"
    [fulfillment_order] = page.fulfillment_orders
    assert fulfillment_order.dr_fulfillment_order_id == f"fo-{order.dr_order_id}"
    [fo_line] = fulfillment_order.lines.all()
    assert (fo_line.quantity, fo_line.pending, fo_line.backordered) == (2, 1, 1)
    html = admin_client.get(change_url(order)).content.decode()
    assert f"foi-{widget.dr_item_id}" in html and "expected 1 Dec 2026" in html


def test_the_page_links_tracking_and_shows_charges_with_failures(admin_client):
    order = story()
    response = admin_client.get(change_url(order))
    html = response.content.decode()
    assert 'href="https://www.ups.com/track?tracknum=1Z999AA10123456784"' in html
    assert "1 \u00d7 Distributed widget" in html
    [charge] = response.context["page"].charges
    operations = {operation.dr_id: operation for operation in charge.operations.all()}
    assert operations["cap-failed"].state == "failed"
    assert "Card declined by the issuer" in html and "26.99 USD" in html


def test_a_tracking_url_that_is_not_a_web_address_is_not_a_link(admin_client):
    order = story()
    order.shipments.update(tracking_url="javascript:alert(1)")
    html = admin_client.get(change_url(order)).content.decode()
    assert "javascript:alert(1)" not in html
    assert "1Z999AA10123456784" in html


def test_the_page_query_count_does_not_grow_with_lines_events_calls_cancellations_or_emails(
    admin_client, django_user_model
):
    small = story(dr_order_id="231388400003", lines=3, extras=1)
    big = story(dr_order_id="231388400050", lines=50, extras=20)
    assert big.lines.count() == 50
    agents = [customer_service(django_user_model, f"agent{number}") for number in range(3)]
    order_cancel(order=small, items=[(small.lines.filter(dr_sku_id="dist-1").first().dr_item_id, 1)], by=agents[0])
    for agent, line in zip(agents, big.lines.filter(dr_sku_id="dist-1")[:3], strict=True):
        order_cancel(order=big, items=[(line.dr_item_id, 1)], by=agent)
    assert Notification.objects.filter(order=big).count() > Notification.objects.filter(order=small).count()
    admin_client.get(change_url(small))  # the content-type cache and the session settle first
    with CaptureQueriesContext(connection) as for_small:
        admin_client.get(change_url(small))
    with CaptureQueriesContext(connection) as for_big:
        response = admin_client.get(change_url(big))
    assert response.status_code == 200 and len(response.context["page"].lines) == 50
    assert len(for_big) == len(for_small), [query["sql"] for query in for_big]


# --- the timeline ------------------------------------------------------------------------------------


def test_the_timeline_merges_four_sources_newest_first_in_sentences(admin_client):
    order = story()
    entries = order_timeline(order=order)
    assert [entry.at for entry in entries] == sorted((entry.at for entry in entries), reverse=True)
    by_source = {}
    for entry in entries:
        by_source.setdefault(entry.source, []).append(entry)
    [call] = by_source["call"]
    assert call.sentence == "POST /fulfillments → 201 in 84 ms"
    [attempt] = by_source["attempt"]
    assert attempt.sentence == "Captured 1 unit of Distributed widget (shipment shp-2313…) — DR accepted"
    assert "HTTP 201" in attempt.detail and "request id req-0" in attempt.detail
    [queued] = by_source["instruction"]
    assert queued.sentence == "Queued: Capture 1 unit of Distributed widget (shipment shp-2313…)"
    [event] = by_source["event"]
    assert event.sentence == "DR said: fulfillment_order.shipped — the warehouse shipped units"
    assert event.links[0][1] == reverse("admin:digitalriver_webhookevent_change", args=[WebhookEvent.objects.get().pk])
    [state] = by_source["state"]
    assert state.sentence == "Order is now Accepted (was Pending payment)"
    assert {entry.sentence for entry in by_source["email"]} == {
        f"Email to ada@example.com waiting to be sent: Your order {order.dr_order_id} has shipped",
        f"Email to ada@example.com waiting to be sent: {backordered_subject(order)}",
    }
    [shipment] = by_source["shipment"]
    assert shipment.sentence == "Shipped 1 unit of Distributed widget, tracked as UPS 1Z999AA10123456784"
    assert shipment.detail == "Reported by DR (fulfillment_order.shipped)"
    # The story's sources are a minute apart (its shipment two hours later): shipment, emails, call,
    # attempt, instruction, event, state.
    assert [entry.source for entry in entries] == [
        "shipment",
        "email",
        "email",
        "call",
        "attempt",
        "instruction",
        "event",
        "state",
    ]

    html = admin_client.get(change_url(order)).content.decode()
    assert html.index("POST /fulfillments → 201 in 84 ms") < html.index("DR said: fulfillment_order.shipped")


def backordered_subject(order: Order) -> str:
    return Notification.objects.get(order=order, kind=Notification.Kind.BACKORDERED).subject


def test_the_timeline_tells_each_email_sent_or_why_it_was_not():
    order = story()
    Notification.objects.filter(kind=Notification.Kind.SHIPPED).update(sent_at=T0 + timedelta(minutes=6), attempts=1)
    Notification.objects.filter(kind=Notification.Kind.BACKORDERED).update(
        attempts=2, error="SMTPRecipientsRefused: {'ada@example.com': (550, b'mailbox unavailable')}"
    )
    emails = {entry.sentence: entry for entry in order_timeline(order=order) if entry.source == "email"}
    sent = emails[f"Emailed ada@example.com: Your order {order.dr_order_id} has shipped"]
    assert sent.at == T0 + timedelta(minutes=6) and sent.tone == "" and sent.detail == ""
    failed = emails[f"Email to ada@example.com not sent: {backordered_subject(order)}"]
    assert failed.tone == "error" and "2 tries" in failed.detail and "550" in failed.detail


def test_the_timeline_tells_failed_attempts_and_an_operators_retry(admin_user):
    order = story()
    capture = Instruction.objects.get(kind=POST_FULFILLMENT)
    Attempt.objects.create(
        instruction=capture,
        number=2,
        started_at=T0 + timedelta(minutes=5),
        duration_ms=10_000,
        outcome=Attempt.Outcome.TRANSIENT,
        http_status=503,
        error_codes=["service_unavailable"],
        request_id="req-503",
        message="Service unavailable",
    )
    capture.retry_now(by=admin_user, description="operator retry")
    capture.save()
    sentences = [entry.sentence for entry in order_timeline(order=order)]
    assert (
        "Capture 1 unit of Distributed widget (shipment shp-2313…) — try 2 failed (HTTP 503 · service_unavailable)"
        in sentences
    )
    assert f"Capture 1 unit of Distributed widget (shipment shp-2313…): sent again on request by {admin_user}" in (
        sentences
    )


def test_the_page_caps_the_timeline_and_links_to_all_of_it(admin_client):
    order = story(extras=30)
    response = admin_client.get(change_url(order))
    page = response.context["page"]
    assert len(page.timeline) == 50 and page.timeline_truncated
    assert 'id="show-all-timeline"' in response.content.decode()
    full = admin_client.get(reverse("admin:commerce_order_timeline", args=[order.pk]))
    assert full.status_code == 200
    # 30 events, attempts and calls each, the capture instruction, the order's one transition, the
    # shipment, and its email and the backorder's.
    assert len(full.context["timeline"]) == 30 * 3 + 2 + 1 + 2


# --- refresh -----------------------------------------------------------------------------------------


@pytest.fixture
def dr(settings):
    settings.DR_API_BASE_URL = "https://dr.test"
    settings.DR_CLIENT_MAX_RETRIES = 0
    with responses.RequestsMock() as mock:
        yield mock


def test_refresh_mirrors_drs_order_and_says_so(admin_client, dr):
    order = story()
    fresher = order_data(email="ada.new@example.com", updatedTime="2026-11-21T09:00:00.000Z")
    dr.get("https://dr.test/orders/231388420336", json=fresher)
    response = admin_client.post(reverse("admin:commerce_order_refresh", args=[order.pk]), follow=True)
    assert response.status_code == 200
    assert "Order 231388420336 now matches Digital River." in response.content.decode()
    assert Order.objects.get(pk=order.pk).email == "ada.new@example.com"
    assert ApiCall.objects.filter(subject="order:231388420336", method="GET", status=200).exists()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"body": requests.ConnectionError("refused")}, "Digital River could not be reached"),
        ({"status": 503, "json": {"type": "server_error", "errors": []}}, "Digital River could not be reached"),
        ({"status": 404, "json": fixture("error_not_found.json")}, "Digital River does not know order 231388420336"),
    ],
)
def test_refresh_when_dr_fails_is_a_message_and_changes_nothing(admin_client, dr, answer, says):
    order = story()
    dr.get("https://dr.test/orders/231388420336", **answer)
    response = admin_client.post(reverse("admin:commerce_order_refresh", args=[order.pk]), follow=True)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert Order.objects.get(pk=order.pk).email == "ada@example.com"


def test_refresh_without_a_dr_key_is_a_message(admin_client, settings):
    order = story()
    settings.DR_SECRET_KEY = ""
    response = admin_client.post(reverse("admin:commerce_order_refresh", args=[order.pk]), follow=True)
    assert response.status_code == 200
    assert "This server cannot call Digital River: DR_SECRET_KEY is not set" in response.content.decode()


def test_refresh_needs_a_post(admin_client):
    order = story()
    assert admin_client.get(reverse("admin:commerce_order_refresh", args=[order.pk])).status_code == 405


# --- read-only ---------------------------------------------------------------------------------------


def test_mirrored_data_cannot_be_edited_added_or_deleted(admin_client):
    order = story()
    page = admin_client.get(change_url(order)).content.decode()
    assert 'name="email"' not in page and 'name="_save"' not in page
    response = admin_client.post(change_url(order), {"email": "mallory@example.com"})
    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).email == "ada@example.com"
    assert admin_client.get(reverse("admin:commerce_order_add")).status_code == 403
    assert admin_client.get(reverse("admin:commerce_order_delete", args=[order.pk])).status_code == 403


def test_an_agent_with_view_permission_reads_the_page_and_refreshes(client, django_user_model, dr):
    order = story()
    agent = django_user_model.objects.create_user("agent", password="x", is_staff=True)
    agent.user_permissions.add(Permission.objects.get(codename="view_order", content_type__app_label="commerce"))
    client.force_login(agent)
    assert client.get(change_url(order)).status_code == 200
    dr.get("https://dr.test/orders/231388420336", json=order_data())
    response = client.post(reverse("admin:commerce_order_refresh", args=[order.pk]), follow=True)
    assert "now matches Digital River" in response.content.decode()


def test_fulfillment_admins_find_by_dr_ids_and_link_back_to_the_order(admin_client):
    order = story()
    order_link = f'href="{change_url(order)}"'
    for name, term in (
        ("fulfillmentorder", f"fo-{order.dr_order_id}"),
        ("shipment", f"shp-{order.dr_order_id}-4f1b9d7e"),
        ("fulfillmentorder", order.dr_order_id),
        ("shipment", order.dr_order_id),
    ):
        response = admin_client.get(reverse(f"admin:fulfillment_{name}_changelist"), {"q": term})
        assert response.status_code == 200
        [row] = response.context["cl"].result_list
        assert order_link in response.content.decode()
        detail = admin_client.get(reverse(f"admin:fulfillment_{name}_change", args=[row.pk]))
        assert detail.status_code == 200 and order_link in detail.content.decode()
    shipment_url = reverse("admin:fulfillment_shipment_change", args=[order.shipments.get().pk])
    assert "Distributed widget" in admin_client.get(shipment_url).content.decode()
    assert admin_client.post(shipment_url, {}).status_code == 403


def test_drs_own_fulfillment_of_an_orchestrated_line_is_on_the_page_and_in_its_admin(admin_client):
    order = story()
    managed = order.lines.get(dr_sku_id="orch-1")
    record = fixture("fulfillment.json")
    record.update(id="ful-orchestrated-1", orderId=order.dr_order_id, shipmentId="shp-orchestrated-1")
    record["items"] = [{"itemId": managed.dr_item_id, "skuId": "orch-1", "quantity": 1, "cancelQuantity": 0}]
    dr_fulfillment_recorded(data=record)

    html = admin_client.get(change_url(order)).content.decode()
    assert "Fulfillments recorded by DR" in html and "Captured 1 unit of Managed widget" in html
    assert html.count('href="https://www.ups.com/track?tracknum=1Z999AA10123456784"') == 3  # two shipments, one record

    found = admin_client.get(reverse("admin:fulfillment_drfulfillment_changelist"), {"q": order.dr_order_id})
    [row] = found.context["cl"].result_list
    detail = admin_client.get(reverse("admin:fulfillment_drfulfillment_change", args=[row.pk])).content.decode()
    assert f'href="{change_url(order)}"' in detail and "ful-orchestrated-1" in detail


def customer_service(django_user_model, username="alice"):
    user = django_user_model.objects.create_user(username, password="x", is_staff=True)
    user.groups.add(restore_roles()["Customer service"])
    return user


def answer_cancellation(order: Order, line, accepted: int, asked: int = 1) -> None:
    cancellation_answered(
        data={
            "id": "fc-1",
            "upstreamId": order.dr_order_id,
            "fulfillmentOrderId": f"fo-{order.dr_order_id}",
            "state": "accepted",
            "items": [
                {"fulfillmentOrderItemId": f"foi-{line.dr_item_id}", "quantity": asked, "quantityAccepted": accepted}
            ],
        }
    )


def progress_of(admin_client, order: Order) -> list[tuple[str, str]]:
    [shown] = admin_client.get(change_url(order)).context["page"].cancellations
    return [(step.label, step.status) for step in shown.steps]


def test_a_cancellation_request_is_followed_on_the_page_and_told_in_the_timeline(admin_client, django_user_model):
    order = story()
    alice = customer_service(django_user_model)
    widget = order.lines.get(dr_sku_id="dist-1")
    [request] = order_cancel(order=order, items=[(widget.dr_item_id, 1)], reason="changed their mind", by=alice)
    assert progress_of(admin_client, order) == [
        ("Requested", "done"),
        ("Sent to DR", "waiting"),
        ("Warehouse answer", "todo"),
        ("Payment released", "todo"),
    ]
    answer_cancellation(order, widget, accepted=1)

    response = admin_client.get(change_url(order))
    [shown] = response.context["page"].cancellations
    assert shown.request.pk == request.pk and shown.requester == "Customer service (alice)"
    assert [(step.label, step.status) for step in shown.steps][2:] == [
        ("Warehouse accepted", "done"),
        ("Payment released", "waiting"),
    ]
    html = response.content.decode()
    assert 'id="order-cancellations"' in html and "changed their mind" in html
    assert 'title="waiting">Payment released</span>' in html
    sentences = [entry.sentence for entry in response.context["page"].timeline]
    assert (
        "Customer service (alice) asked to cancel 1 unit of Distributed widget: "
        "the warehouse accepted it; waiting for the payment to be released"
    ) in sentences
    assert "Cancellation of 1 unit of Distributed widget: the warehouse accepted it" in sentences
    assert "Queued: Ask the warehouse to cancel 1 unit of Distributed widget" in sentences

    units_released(order_line=widget, quantity=1)
    assert progress_of(admin_client, order)[2:] == [("Warehouse accepted", "done"), ("Payment released", "done")]
    sentences = [entry.sentence for entry in order_timeline(order=order)]
    assert (
        "Customer service (alice) asked to cancel 1 unit of Distributed widget: "
        "the warehouse accepted it; payment released"
    ) in sentences
    assert "Cancellation of 1 unit of Distributed widget: payment released" in sentences
    found = admin_client.get(reverse("admin:fulfillment_cancellationrequest_changelist"), {"q": "fc-1"})
    assert [row.pk for row in found.context["cl"].result_list] == [request.pk]
    assert (
        admin_client.get(reverse("admin:fulfillment_cancellationrequest_change", args=[request.pk])).status_code == 200
    )


def test_a_partly_accepted_request_says_how_many_units_the_warehouse_took(admin_client, admin_user):
    order = story(lines=1)
    order.lines.update(quantity=3)
    FulfillmentOrderLine.objects.filter(order_line__order=order).update(quantity=3, pending=2, backordered=1)
    widget = order.lines.get()
    order_cancel(order=order, items=[(widget.dr_item_id, 2)], reason="too many", by=admin_user)
    answer_cancellation(order, widget, accepted=1, asked=2)
    assert progress_of(admin_client, order)[2] == ("Warehouse accepted 1 of 2", "done")
    sentences = [entry.sentence for entry in order_timeline(order=order)]
    assert (
        "Cancellation of 2 units of Distributed widget: "
        "the warehouse accepted 1 of the 2 units (it had shipped the rest)"
    ) in sentences


# --- cancel items --------------------------------------------------------------------------------------


def cancel_url(order: Order) -> str:
    return reverse("admin:commerce_order_cancel", args=[order.pk])


def line_input(line) -> str:
    return f"line_{line.pk}"


def test_the_cancel_form_lists_each_line_with_what_can_be_cancelled_and_why_not(admin_client):
    order = story()
    assert f'href="{cancel_url(order)}"' in admin_client.get(change_url(order)).content.decode()
    response = admin_client.get(cancel_url(order))
    assert response.status_code == 200
    rows = {line.dr_sku_id: (most, why_not) for line, most, why_not, _ in response.context["form"].rows()}
    # 2 widgets: 1 shipped, 1 backordered at the warehouse; the managed widget has no fulfillment order.
    assert rows == {
        "dist-1": (1, ""),
        "orch-1": (0, "its fulfillment order is not created yet; try again in a minute"),
    }
    html = response.content.decode()
    assert 'max="1"' in html and "Its fulfillment order is not created yet" in html
    assert 'name="reason"' in html and 'name="cancel_all"' in html


def test_cancelling_a_unit_asks_for_confirmation_then_asks_the_warehouse(
    client, django_user_model, django_capture_on_commit_callbacks
):
    order = story()
    alice = customer_service(django_user_model)
    client.force_login(alice)
    widget = order.lines.get(dr_sku_id="dist-1")
    chosen = {line_input(widget): "1", "reason": "the customer changed their mind"}

    with django_capture_on_commit_callbacks() as jobs:
        review = client.post(cancel_url(order), chosen)
    assert jobs == []  # the review's dry run queued nothing for DR
    assert review.status_code == 200
    [step] = review.context["plan"]
    assert step.what == "Ask the warehouse to cancel 1 unit of Distributed widget"
    assert step.dr_call.startswith("POST /fulfillment-cancellations")
    assert "we release the payment of the accepted units (POST /fulfillments" in step.dr_call
    html = review.content.decode()
    assert 'name="confirm"' in html and "the customer changed their mind" in html
    assert not CancellationRequest.objects.exists() and not Instruction.objects.filter(kind=REQUEST_CANCELLATION)

    back = client.post(cancel_url(order), {**chosen, "edit": "1"})
    assert back.context["plan"] is None and 'value="1"' in back.content.decode()

    done = client.post(cancel_url(order), {**chosen, "confirm": "1"}, follow=True)
    assert done.redirect_chain == [(change_url(order) + "#cancellations", 302)]
    assert "Cancellation sent: Ask the warehouse to cancel 1 unit of Distributed widget." in done.content.decode()
    [request] = CancellationRequest.objects.all()
    assert (request.requested_by, request.reason, request.state) == (
        alice,
        "the customer changed their mind",
        "requested",
    )
    assert [(line.order_line, line.quantity) for line in request.lines.all()] == [(widget, 1)]
    assert order.lines.get(pk=widget.pk).cancel_requested == 1
    assert Instruction.objects.get(kind=REQUEST_CANCELLATION).payload["items"][0]["quantity"] == 1


def test_more_units_than_cancellable_is_an_error_on_the_line_and_stores_nothing(admin_client):
    order = story()
    widget = order.lines.get(dr_sku_id="dist-1")
    for data in ({line_input(widget): "2", "reason": "x"}, {line_input(widget): "2", "reason": "x", "confirm": "1"}):
        response = admin_client.post(cancel_url(order), data)
        assert response.status_code == 200 and response.context["plan"] is None
        assert response.context["form"].errors[line_input(widget)] == [
            "At most 1 unit of this line can be cancelled now."
        ]
    assert not CancellationRequest.objects.exists()
    assert order.lines.get(pk=widget.pk).cancel_requested == 0


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"reason": "x"}, "Enter how many units to cancel on at least one line, or choose the whole order."),
        ({"reason": "x", "cancel_all": "on", "line": "1"}, "Choose either the whole order or some units"),
    ],
)
def test_the_form_wants_either_some_units_or_the_whole_order(admin_client, data, says):
    order = story()
    data = {
        line_input(order.lines.get(dr_sku_id="dist-1")) if key == "line" else key: value for key, value in data.items()
    }
    response = admin_client.post(cancel_url(order), data)
    assert says in " ".join(response.context["form"].non_field_errors())
    assert not CancellationRequest.objects.exists()


def test_a_reason_is_required(admin_client):
    order = story()
    response = admin_client.post(cancel_url(order), {line_input(order.lines.get(dr_sku_id="dist-1")): "1"})
    assert response.context["form"].errors["reason"] == ["This field is required."]


def test_a_refused_whole_order_cancel_is_shown_on_the_form_and_stores_nothing(admin_client):
    order = story()  # one widget shipped
    refusal = "The whole order cannot be cancelled: units already shipped on Distributed widget (1 shipped)."
    for data in ({"cancel_all": "on", "reason": "fraud"}, {"cancel_all": "on", "reason": "fraud", "confirm": "1"}):
        response = admin_client.post(cancel_url(order), data)
        assert response.status_code == 200 and response.context["plan"] is None
        html = response.content.decode()
        assert 'id="action-refusal"' in html and refusal in html and "Nothing was changed." in html
    assert not CancellationRequest.objects.exists() and not Instruction.objects.filter(kind=REQUEST_CANCELLATION)
    assert sum(order.lines.values_list("cancel_requested", flat=True)) == 0


def test_before_acceptance_the_whole_order_is_released_at_once(admin_client):
    order = order_upsert(data=order_data(state="in_review"))
    review = admin_client.post(cancel_url(order), {"cancel_all": "on", "reason": "fraud suspected"})
    assert [(step.what, step.dr_call.split(":")[0]) for step in review.context["plan"]] == [
        ("Release the payment of 2 units of Distributed widget", "POST /fulfillments with cancelQuantity"),
        ("Release the payment of 1 unit of Managed widget", "POST /fulfillments with cancelQuantity"),
    ]
    admin_client.post(cancel_url(order), {"cancel_all": "on", "reason": "fraud suspected", "confirm": "1"})
    [request] = CancellationRequest.objects.all()
    assert request.route == CancellationRequest.Route.FULFILLMENT
    assert sorted(
        item["cancelQuantity"] for item in Instruction.objects.get(kind=POST_FULFILLMENT).payload["items"]
    ) == [1, 2]


def test_cancel_needs_the_permission(client, django_user_model):
    order = story()
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_order", content_type__app_label="commerce"))
    client.force_login(viewer)
    page = client.get(change_url(order)).content.decode()
    assert cancel_url(order) not in page and "Cancel items" not in page
    assert client.get(cancel_url(order)).status_code == 403
    data = {line_input(order.lines.get(dr_sku_id="dist-1")): "1", "reason": "x", "confirm": "1"}
    assert client.post(cancel_url(order), data).status_code == 403
    assert not CancellationRequest.objects.exists()


def test_a_closed_order_offers_no_cancel_button(admin_client):
    order = order_upsert(data=order_data(state="complete"))
    assert cancel_url(order) not in admin_client.get(change_url(order)).content.decode()


def test_the_actions_need_the_csrf_token(django_user_model):
    order = story()
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(customer_service(django_user_model))
    widget = order.lines.get(dr_sku_id="dist-1")
    data = {line_input(widget): "1", "reason": "x", "confirm": "1"}
    assert csrf_client.post(cancel_url(order), data).status_code == 403
    assert csrf_client.post(ship_url(order), data).status_code == 403
    assert not CancellationRequest.objects.exists() and not Shipment.objects.filter(source="recorded").exists()

    form = csrf_client.get(cancel_url(order))
    token = form.context["csrf_token"]
    review = csrf_client.post(cancel_url(order), {**data, "csrfmiddlewaretoken": str(token)})
    assert review.status_code == 302 and CancellationRequest.objects.count() == 1


# --- record a shipment -----------------------------------------------------------------------------------


def ship_url(order: Order) -> str:
    return reverse("admin:commerce_order_record_shipment", args=[order.pk])


@pytest.fixture
def third_party_order() -> Order:
    """A widget the warehouse ships through DR, and 3 gadgets our logistics partner ships."""
    Sku.objects.create(
        sku_id="3p-1",
        name="Partner gadget",
        fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY,
        tax_code="4512.1",
        eccn="EAR99",
        country_of_origin="US",
        part_number="P-3",
    )
    data = order_data(dr_order_id="231388420777")
    data["items"][1].update(skuId="3p-1", quantity=3, productDetails={"id": "3p-1", "name": "Partner gadget"})
    return order_upsert(data=data)


def test_record_shipment_lists_only_our_own_lines_then_confirms_and_captures(
    client, django_user_model, third_party_order, django_capture_on_commit_callbacks
):
    order = third_party_order
    client.force_login(customer_service(django_user_model, "bob"))
    assert f'href="{ship_url(order)}"' in client.get(change_url(order)).content.decode()
    gadget = order.lines.get(dr_sku_id="3p-1")
    form = client.get(ship_url(order)).context["form"]
    assert [(line.dr_sku_id, most) for line, most, _, _ in form.rows()] == [("3p-1", 3)]

    data = {
        line_input(gadget): "2",
        "tracking_company": "UPS",
        "tracking_number": "1Z999",
        "tracking_url": "https://www.ups.com/track?tracknum=1Z999",
    }
    with django_capture_on_commit_callbacks() as jobs:
        review = client.post(ship_url(order), data)
    assert jobs == []  # neither the capture nor the email left with the review's dry run
    [step] = review.context["plan"]
    assert step.what == "Record that 2 units of Partner gadget shipped, tracked as UPS 1Z999"
    assert step.dr_call.startswith("POST /fulfillments with quantity 2")
    assert not Shipment.objects.exists() and not Notification.objects.filter(order=order).exists()

    done = client.post(ship_url(order), {**data, "confirm": "1"}, follow=True)
    assert done.redirect_chain == [(change_url(order) + "#shipments", 302)]
    assert "Shipment recorded: Record that 2 units of Partner gadget shipped" in done.content.decode()
    [shipment] = Shipment.objects.all()
    assert (shipment.tracking_company, shipment.tracking_number) == ("UPS", "1Z999")
    assert [(item.order_line, item.quantity) for item in shipment.items.all()] == [(gadget, 2)]
    [capture] = Instruction.objects.filter(kind=POST_FULFILLMENT)
    assert capture.payload["items"] == [{"itemId": gadget.dr_item_id, "quantity": 2}]
    assert Notification.objects.filter(order=order, kind=Notification.Kind.SHIPPED).count() == 1
    told = {entry.sentence: entry.detail for entry in order_timeline(order=order)}
    assert told["Shipped 2 units of Partner gadget, tracked as UPS 1Z999"] == "Recorded by us (third party or digital)"


def test_shipping_more_than_is_open_or_a_bad_url_is_refused_on_the_form(admin_client, third_party_order):
    order = third_party_order
    gadget = order.lines.get(dr_sku_id="3p-1")
    response = admin_client.post(
        ship_url(order), {line_input(gadget): "4", "tracking_url": "not a url", "confirm": "1"}
    )
    errors = response.context["form"].errors
    assert errors[line_input(gadget)] == ["At most 3 units of this line can be recorded as shipped now."]
    assert errors["tracking_url"] == ["Enter a valid URL."]
    assert not Shipment.objects.exists()


def test_a_shipment_on_an_order_no_longer_accepted_is_refused_on_the_form(admin_client, third_party_order):
    order = third_party_order
    gadget = order.lines.get(dr_sku_id="3p-1")
    form = admin_client.get(ship_url(order))
    assert form.status_code == 200
    # Between the form and the confirmation, the order is cancelled at DR.
    Order.objects.filter(pk=order.pk).update(state=Order.State.CANCELLED)
    response = admin_client.post(ship_url(order), {line_input(gadget): "1", "confirm": "1"})
    assert response.context["form"].errors[line_input(gadget)] == [
        "None of this line can be recorded as shipped now: the order is cancelled, not accepted."
    ]
    assert not Shipment.objects.exists()


def test_record_shipment_needs_the_permission_and_a_line_of_our_own(
    client, admin_client, django_user_model, third_party_order
):
    only_drs_lines = story(dr_order_id="231388420555")
    assert ship_url(only_drs_lines) not in admin_client.get(change_url(only_drs_lines)).content.decode()
    order = third_party_order
    agent = django_user_model.objects.create_user("canceller", password="x", is_staff=True)
    agent.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_order", "cancel_order_lines"], content_type__app_label="commerce"
        )
    )
    client.force_login(agent)
    page = client.get(change_url(order)).content.decode()
    assert "Record shipment" not in page and "Cancel items" in page
    gadget = order.lines.get(dr_sku_id="3p-1")
    assert client.get(ship_url(order)).status_code == 403
    assert client.post(ship_url(order), {line_input(gadget): "1", "confirm": "1"}).status_code == 403
    assert not Shipment.objects.filter(order=order).exists()
