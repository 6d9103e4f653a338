"""Customer service's order screens: find an order, read every section and the timeline, refresh
it from DR, never edit it, and pay the same number of queries for a big order as for a small one."""

from datetime import timedelta

import pytest
import requests
import responses
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commerce.models import Order
from commerce.services import order_upsert
from desk.timeline import order_timeline
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
from fulfillment.cancellations import order_cancel, units_released
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import FulfillmentOrderLine, Notification
from fulfillment.shipments import dr_fulfillment_mirror
from tests.conftest import fixture
from tests.fulfillment.order_stories import (
    T0,
    answer_cancellation,
    change_url,
    customer_service,
    order_data,
    progress_of,
    story,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


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


def test_changelist_searches_what_an_agent_types(admin_client):
    ada = story()  # lines dist-1 and orch-1, shipped with tracking 1Z999AA10123456784
    grace = order_upsert(
        data=order_data(
            dr_order_id="231388420999",
            lines=1,
            upstreamId="WEB-2",
            email="grace@example.com",
            shipTo={**fixture("order.json")["shipTo"], "name": "Grace Hopper"},
        )
    )
    url = reverse("admin:commerce_order_changelist")

    def found(term):
        return {order.dr_order_id for order in admin_client.get(url, {"q": term}).context["cl"].result_list}

    assert found(ada.dr_order_id) == {ada.dr_order_id}
    assert found("88420") == {ada.dr_order_id, grace.dr_order_id}  # part of the DR order id
    assert found("420999") == {grace.dr_order_id}
    assert found("WEB-2") == {grace.dr_order_id}
    assert found("web-2") == {grace.dr_order_id}
    assert found("grace@") == {grace.dr_order_id}
    assert found("lovelace") == {ada.dr_order_id}
    assert found("orch-1") == {ada.dr_order_id}  # a SKU of one of its lines
    assert found("1Z999AA10123456784") == {ada.dr_order_id}  # a tracking number, whole
    assert found("1z999aa1012") == {ada.dr_order_id}  # or its start, in any case
    assert found("grace example.com") == {grace.dr_order_id}  # each word must match
    assert found("nobody-here") == set()
    response = admin_client.get(url, {"q": "1Z999"})
    assert response.context["cl"].result_count == 1  # one row per order however many things match
    assert "tracking number" in response.content.decode()  # the search box says what it finds


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
    assert state.sentence == "Order is now accepted (was pending payment)"
    assert {entry.sentence for entry in by_source["email"]} == {
        f"Email to ada@example.com waiting to be sent: Your order {order.dr_order_id} has shipped",
        f"Email to ada@example.com waiting to be sent: {backordered_subject(order)}",
    }
    [shipment] = by_source["shipment"]
    assert shipment.sentence == "Shipped 1 unit of Distributed widget, tracked as UPS 1Z999AA10123456784"
    assert shipment.detail == "Shipped by our warehouse, reported by DR"
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
        "ordered",
        "state",
    ]

    html = admin_client.get(change_url(order) + "?technical=1").content.decode()
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
    response = admin_client.get(change_url(order) + "?technical=1")
    page = response.context["page"]
    assert len(page.timeline) == 50 and page.timeline_truncated
    assert 'id="show-all-timeline"' in response.content.decode()
    full = admin_client.get(reverse("admin:commerce_order_timeline", args=[order.pk]) + "?technical=1")
    assert full.status_code == 200
    # 30 events, attempts and calls each, the capture instruction, the order's one transition, the
    # order placed, the shipment, and its email and the backorder's.
    assert len(full.context["timeline"]) == 30 * 3 + 2 + 1 + 1 + 2
    assert not full.context["timeline_truncated"]


def test_the_full_timeline_stops_at_its_cap_and_points_to_the_lists(admin_client, monkeypatch):
    monkeypatch.setattr("desk.admin.TIMELINE_WHOLE", 20)
    order = story(extras=30)
    full = admin_client.get(reverse("admin:commerce_order_timeline", args=[order.pk]) + "?technical=1")
    assert len(full.context["timeline"]) == 20 and full.context["timeline_truncated"]
    notice = full.content.decode().split('id="timeline-truncated"')[1].split("</p>")[0]
    assert "newest 20 entries" in notice
    assert f'href="/admin/digitalriver/webhookevent/?q={order.dr_order_id}"' in notice
    assert f'href="/admin/digitalriver/apicall/?q={order.dr_order_id}"' in notice


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


def test_an_agent_with_view_permission_reads_the_page_and_refreshes_only_with_change(client, django_user_model, dr):
    order = story()
    agent = django_user_model.objects.create_user("agent", password="x", is_staff=True)
    agent.user_permissions.add(Permission.objects.get(codename="view_order", content_type__app_label="commerce"))
    client.force_login(agent)
    page = client.get(change_url(order))
    assert page.status_code == 200 and 'id="refresh-from-dr"' not in page.content.decode()
    assert client.post(reverse("admin:commerce_order_refresh", args=[order.pk])).status_code == 403
    # Refreshing rewrites the mirror: it takes commerce.change_order, as the API's refresh does.
    agent.user_permissions.add(Permission.objects.get(codename="change_order", content_type__app_label="commerce"))
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
    dr_fulfillment_mirror(data=record)

    html = admin_client.get(change_url(order)).content.decode()
    assert "Fulfillments recorded by DR" in html and "Captured 1 unit of Managed widget" in html
    assert html.count('href="https://www.ups.com/track?tracknum=1Z999AA10123456784"') == 3  # two shipments, one record

    found = admin_client.get(reverse("admin:fulfillment_drfulfillment_changelist"), {"q": order.dr_order_id})
    [row] = found.context["cl"].result_list
    detail = admin_client.get(reverse("admin:fulfillment_drfulfillment_change", args=[row.pk])).content.decode()
    assert f'href="{change_url(order)}"' in detail and "ful-orchestrated-1" in detail


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
    # The queued instruction is machinery: told only with the technical entries.
    assert "Queued: Ask the warehouse to cancel 1 unit of Distributed widget" not in sentences
    technical = admin_client.get(change_url(order), {"technical": "1"}).context["page"].timeline
    assert "Queued: Ask the warehouse to cancel 1 unit of Distributed widget" in [entry.sentence for entry in technical]

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


def test_claims_logged_before_a_claim_stopped_being_a_transition_stay_off_the_timeline():
    """Instruction log rows of the old "claim" transition (written before issue 14) are machinery the
    attempts already tell; only what a person or a failure did is an entry."""
    from django.contrib.contenttypes.models import ContentType
    from django_fsm_log.models import StateLog

    order = order_upsert(data=fixture("order.json"))
    instruction = Instruction.objects.create(kind=POST_FULFILLMENT, subject=f"order:{order.dr_order_id}")
    logged = {"content_type": ContentType.objects.get_for_model(Instruction), "object_id": instruction.pk}
    StateLog.objects.create(**logged, source_state="pending", state="sending", transition="claim")
    StateLog.objects.create(**logged, source_state="failed", state="pending", transition="retry_now")

    told = [entry.sentence for entry in order_timeline(order=order) if entry.source == "instruction"]
    assert [sentence.split(": ")[-1] for sentence in told if not sentence.startswith("Queued")] == [
        "sent again on request"
    ]
