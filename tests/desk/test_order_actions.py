"""Customer service acting on an order from its page: cancel items, record a shipment."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from commerce.models import Order
from commerce.services import order_upsert
from desk.timeline import order_timeline
from digitalriver.models import Instruction
from fulfillment.kinds import REQUEST_CANCELLATION
from fulfillment.models import CancellationRequest, Notification, Shipment
from fulfillment.services import (
    POST_FULFILLMENT,
)
from tests.fulfillment.order_stories import change_url, customer_service, order_data, order_with_partner_gadgets, story

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


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
    # A unit shipped: the whole order is no longer offered, and the form says why.
    assert 'name="reason"' in html and 'name="cancel_all"' not in html
    assert "The whole order cannot be cancelled: units already shipped on Distributed widget" in html


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
    # In review, nothing shipped: the whole order may still be cancelled, so it is offered.
    order = order_upsert(data=order_data(state="in_review"))
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
    return order_with_partner_gadgets(dr_order_id="231388420777")


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
    assert told["Shipped 2 units of Partner gadget, tracked as UPS 1Z999"] == (
        "Recorded by us (third party or digital) · by bob"
    )
    assert shipment.recorded_by.get_username() == "bob"


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
