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


# --- lists of millions of rows (core.admin_scale) ---------------------------------------------------

BIG_LISTS = [
    "/admin/digitalriver/webhookevent/",
    "/admin/digitalriver/webhookevent/?state__exact=failed",
    "/admin/digitalriver/webhookevent/?received_at__gte=2020-01-01+00%3A00%3A00%2B00%3A00",
    "/admin/digitalriver/webhookevent/?q=order%3A240000000003",
    "/admin/digitalriver/webhookevent/?q=shipped",
    "/admin/digitalriver/instruction/",
    "/admin/digitalriver/instruction/?q=capture",
    "/admin/digitalriver/instruction/?q=service_unavailable",
    "/admin/digitalriver/apicall/",
    "/admin/digitalriver/apicall/?q=fulfillments",
    "/admin/digitalriver/apicall/?status=200",
]


def test_the_integration_lists_never_read_a_whole_table(staff, monkeypatch):
    """At ten million events, each of these was a scan of the table: COUNT(*) for the paginator,
    SELECT DISTINCT for a filter's values and the date hierarchy, LIKE '%…%' or UPPER() for a search."""
    from core import admin_scale

    if connection.vendor == "postgresql":
        monkeypatch.setattr(admin_scale, "EXACT_COUNT_UP_TO", 2)  # the lists below have more: estimated
    limit = f"LIMIT {admin_scale.EXACT_COUNT_UP_TO + 1}"
    for number in range(4):
        store_event(number)
        store_instruction(number)
        ApiCall.objects.create(method="POST", path="/fulfillments", status=201, subject=f"order:24000000{number:04d}")
    store_event(9, state=WebhookEvent.State.FAILED, event_type="fulfillment_order.shipped")
    for url in BIG_LISTS:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(url).status_code == 200, url
        for query in (query["sql"] for query in captured):
            assert "DISTINCT" not in query, (url, query)
            assert "LIKE '%" not in query and "UPPER(" not in query, (url, query)
            if "COUNT(" in query:
                assert limit in query, (url, query)


def test_the_event_list_finds_an_event_by_id_order_or_part_of_its_type(staff):
    for number in range(3):
        store_event(number)
    store_event(9, event_type="fulfillment_order.shipped")

    def found(term):
        response = staff.get("/admin/digitalriver/webhookevent/", {"q": term})
        return sorted(event.dr_event_id for event in response.context["cl"].result_list)

    assert found("evt-1") == ["evt-1"]
    assert found("240000000002") == found("order:240000000002") == ["evt-2"]
    assert found("SHIPPED") == found("fulfillment_order") == ["evt-9"]
    assert found("order.accepted 240000000001") == ["evt-1"]  # every word must match
    assert found("evt") == []  # ids match whole, not in part


def test_the_event_list_filters_by_the_types_it_holds_and_sorts_by_time_or_order_only(staff):
    store_event(1)
    store_event(2, event_type="fulfillment_order.shipped")
    response = staff.get("/admin/digitalriver/webhookevent/")
    type_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "type")
    assert list(type_filter.lookup_choices) == ["fulfillment_order.shipped", "order.accepted"]
    sortable = [header["text"] for header in response.context["result_headers"] if header["sortable"]]
    assert sortable == ["received at", "order"]


def test_the_call_list_filters_by_status_including_no_answer(staff):
    ApiCall.objects.create(method="POST", path="/fulfillments", status=409, error_code="conflict")
    ApiCall.objects.create(method="GET", path="/orders/1", status=None, error_code="timeout")
    ApiCall.objects.create(method="GET", path="/orders/2", status=200)
    page = staff.get("/admin/digitalriver/apicall/")
    status_filter = next(spec for spec in page.context["cl"].filter_specs if spec.title == "status")
    assert list(status_filter.lookup_choices) == [200, 409, None]
    no_answer = staff.get("/admin/digitalriver/apicall/", {"status__isnull": "True"})
    assert [call.path for call in no_answer.context["cl"].result_list] == ["/orders/1"]
    assert staff.get("/admin/digitalriver/apicall/", {"method": "POST"}).context["cl"].result_count == 1
    by_path = staff.get("/admin/digitalriver/apicall/", {"q": "/orders"})
    assert sorted(call.path for call in by_path.context["cl"].result_list) == ["/orders/1", "/orders/2"]


def test_the_instruction_list_finds_by_part_of_a_kind_or_a_whole_error_code(staff):
    store_instruction(1)
    Instruction.objects.filter(pk=store_instruction(2).pk).update(last_error_code="quantity_too_large")
    Instruction.objects.create(kind="catalog.sku.push", subject="sku:A-1", payload={})

    def found(term):
        response = staff.get("/admin/digitalriver/instruction/", {"q": term})
        return sorted(instruction.subject for instruction in response.context["cl"].result_list)

    assert found("sku.push") == ["sku:A-1"]
    assert found("quantity_too_large") == ["order:240000000002"]
    assert found("quantity") == []


@pytest.mark.postgres
def test_a_list_past_the_exact_count_says_about_how_many(staff, monkeypatch):
    from core import admin_scale

    monkeypatch.setattr(admin_scale, "EXACT_COUNT_UP_TO", 2)
    for number in range(5):
        store_event(number)
    response = staff.get("/admin/digitalriver/webhookevent/")
    assert response.context["cl"].paginator.estimated
    assert '<p class="paginator">' in response.content.decode()
    assert "about " in response.content.decode().split('<p class="paginator">')[1]
    searched = staff.get("/admin/digitalriver/webhookevent/", {"q": "order.accepted"})
    assert "about " in searched.content.decode().split('id="changelist-search"')[1].split("</form>")[0]
