"""A shipment that names no unit of the order is refused and kept as a failed event with why; the
order page and its timeline still answer (they once answered 500 for good)."""

import pytest

from digitalriver.models import Instruction, WebhookEvent
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import Shipment
from tests.conftest import fixture, make_event

pytestmark = pytest.mark.django_db


def shipment(**changes) -> dict:
    data = fixture("shipment.json")
    data.update(changes)
    return data


def one_item(**changes) -> list[dict]:
    return [{**fixture("shipment.json")["items"][0], **changes}]


@pytest.mark.parametrize(
    "items",
    [[], one_item(quantity=0), one_item(fulfillmentOrderItemUpstreamId="999999999"), one_item(quantity="lots")],
    ids=["no items", "quantity 0", "an item the order does not have", "quantity not a number"],
)
def test_a_shipment_of_no_units_is_refused_and_the_order_page_still_answers(
    items, accepted_order, post_event, admin_client
):
    response = post_event(make_event("fulfillment_order.shipped", shipment(items=items)))
    event = WebhookEvent.objects.get(dr_event_id=response.json()["id"])
    assert event.state == WebhookEvent.State.FAILED
    assert event.error.startswith("UnusableEvent: shipment ") and "names no shipped unit of order" in event.error
    assert not Shipment.objects.exists()
    assert not Instruction.objects.filter(kind=POST_FULFILLMENT).exists()
    order_page = admin_client.get(f"/admin/commerce/order/{accepted_order.pk}/change/")
    timeline = admin_client.get(f"/admin/commerce/order/{accepted_order.pk}/timeline/")
    assert (order_page.status_code, timeline.status_code) == (200, 200)


def test_a_shipment_stored_without_items_reads_as_a_sentence_on_the_page(accepted_order, admin_client):
    Shipment.objects.create(order=accepted_order, dr_shipment_id="shp_empty", source=Shipment.Source.DR)
    page = admin_client.get(f"/admin/commerce/order/{accepted_order.pk}/timeline/")
    assert page.status_code == 200
    assert "no items" in page.content.decode()
