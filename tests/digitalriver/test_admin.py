"""The operators' screens: lists with filters and search, readable details, read-only mirrors."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
from tests.conftest import make_event

pytestmark = pytest.mark.django_db


def store_event(number: int, state=WebhookEvent.State.RECEIVED, event_type="order.accepted") -> WebhookEvent:
    payload = make_event(event_type, {"id": f"24000000{number:04d}", "state": "accepted"}, event_id=f"evt-{number}")
    return WebhookEvent.objects.create(
        dr_event_id=payload["id"],
        type=event_type,
        state=state,
        order_id=payload["data"]["object"]["id"],
        body=json.dumps(payload),
        payload=payload,
        headers={"Content-Type": "application/json"},
    )


def store_instruction(number: int) -> Instruction:
    instruction = Instruction.objects.create(
        kind="fulfillment.capture", subject=f"order:24000000{number:04d}", payload={"orderId": str(number)}
    )
    for attempt in (1, 2):
        Attempt.objects.create(
            instruction=instruction,
            number=attempt,
            started_at=timezone.now(),
            duration_ms=12,
            outcome=Attempt.Outcome.TRANSIENT,
            http_status=503,
            message="service_unavailable",
        )
    return instruction


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_event_list_filters_and_searches(staff):
    for number in range(5):
        store_event(number)
    store_event(99, event_type="fulfillment_order.shipped")

    by_type = staff.get("/admin/digitalriver/webhookevent/", {"type": "fulfillment_order.shipped"})
    assert by_type.status_code == 200
    assert by_type.context["cl"].result_count == 1

    by_order = staff.get("/admin/digitalriver/webhookevent/", {"q": "240000000003"})
    assert [event.dr_event_id for event in by_order.context["cl"].result_list] == ["evt-3"]


def test_event_detail_shows_pretty_payload_and_no_edit_form(staff):
    event = store_event(1)
    page = staff.get(f"/admin/digitalriver/webhookevent/{event.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="dr-json"' in html
    assert "evt-1" in html
    assert 'name="_save"' not in html  # mirrored data: no save button


def test_lists_do_not_grow_queries_with_rows(staff):
    def queries_for(url):
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(url).status_code == 200
        return len(captured)

    for number in range(3):
        store_event(number)
        store_instruction(number)
    few = {url: queries_for(url) for url in ("/admin/digitalriver/webhookevent/", "/admin/digitalriver/instruction/")}
    for number in range(3, 30):
        store_event(number)
        store_instruction(number)
    for url, count in few.items():
        assert queries_for(url) == count, url


def test_instruction_detail_lists_its_attempts(staff):
    instruction = store_instruction(7)
    page = staff.get(f"/admin/digitalriver/instruction/{instruction.pk}/change/")
    assert page.status_code == 200
    assert page.content.decode().count("service_unavailable") == 2


def test_api_calls_are_read_only(staff):
    call = ApiCall.objects.create(method="GET", path="/orders/1", status=200, request_id="req-1")
    assert staff.get("/admin/digitalriver/apicall/").status_code == 200
    assert staff.get("/admin/digitalriver/apicall/add/").status_code == 403
    page = staff.get(f"/admin/digitalriver/apicall/{call.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert staff.post(f"/admin/digitalriver/apicall/{call.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiCall.objects.filter(pk=call.pk).exists()


def test_staff_without_the_operator_permissions_sees_no_actions(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_webhookevent", "view_instruction"]))
    client.force_login(user)
    events = client.get("/admin/digitalriver/webhookevent/")
    assert events.status_code == 200
    assert "replay" not in events.context["cl"].model_admin.get_actions(events.wsgi_request)
    instructions = client.get("/admin/digitalriver/instruction/")
    actions = instructions.context["cl"].model_admin.get_actions(instructions.wsgi_request)
    assert "retry_now" not in actions and "cancel_instructions" not in actions


def test_instructions_calls_and_events_are_found_by_the_bare_order_id_and_link_to_it(staff):
    from commerce.models import Order

    order = Order.objects.create(dr_order_id="240000000007", currency="USD")
    store_event(7)
    store_instruction(7)
    store_instruction(8)
    Instruction.objects.create(kind="catalog.push_sku", subject="sku:A-1", payload={})
    ApiCall.objects.create(method="POST", path="/fulfillments", status=201, subject="order:240000000007")
    ApiCall.objects.create(method="GET", path="/orders/240000000008", status=200, subject="order:240000000008")
    order_page = f"/admin/commerce/order/by/{order.dr_order_id}/"

    for url in (
        "/admin/digitalriver/instruction/",
        "/admin/digitalriver/apicall/",
        "/admin/digitalriver/webhookevent/",
    ):
        for typed in ("240000000007", "order:240000000007"):
            found = staff.get(url, {"q": typed})
            assert found.context["cl"].result_count == 1, (url, typed)
            assert f'href="{order_page}"' in found.content.decode(), url
    by_sku = staff.get("/admin/digitalriver/instruction/", {"q": "A-1"})
    assert [i.subject for i in by_sku.context["cl"].result_list] == ["sku:A-1"]
    assert 'href="/admin/catalog/sku/by/A-1/"' in by_sku.content.decode()
    assert staff.get(order_page).url == f"/admin/commerce/order/{order.pk}/change/"

    pages = [
        f"/admin/digitalriver/webhookevent/{WebhookEvent.objects.get(order_id=order.dr_order_id).pk}/change/",
        f"/admin/digitalriver/instruction/{Instruction.objects.get(subject='order:240000000007').pk}/change/",
        f"/admin/digitalriver/apicall/{ApiCall.objects.get(subject='order:240000000007').pk}/change/",
    ]
    for page in pages:
        assert f'href="{order_page}"' in staff.get(page).content.decode(), page
