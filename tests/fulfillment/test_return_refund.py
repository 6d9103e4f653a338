"""After DR's warehouse accepts a return, its units are ours to refund (DR's page
digital-river-coordinated-returns.md: a fulfillment return is not refunded by DR): customer service is
offered the refund pre-filled, or it is issued at once with REFUND_RETURNS_AUTOMATICALLY."""

import pytest

from commerce.models import Refund
from digitalriver.models import Instruction
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.returns import return_execute, return_plan
from fulfillment.services import fulfillment_accepted
from tests.conftest import fixture
from tests.fulfillment.returns_at_dr import warehouse_shipped_one

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog", "no_dr")]

WIDGET = "143040030336"


@pytest.fixture
def order(deliver):
    """One widget shipped, and DR's capture of its fulfillment reported complete."""
    order = warehouse_shipped_one(deliver)
    [capture] = [
        instruction
        for instruction in Instruction.objects.filter(kind=POST_FULFILLMENT)
        if any(item.get("quantity") for item in instruction.payload["items"])
    ]
    fulfillment_accepted(payload=capture.payload, result={"id": "ful-1", "items": capture.payload["items"]})
    charge = fixture("event_order_charge_capture_complete.json")["data"]["object"]
    charge["captures"] = [{"id": "cap-1", "amount": 21.59, "state": "complete", "fulfillmentId": "ful-1"}]
    deliver("order.charge.capture.complete", charge)
    line = order.lines.get(dr_item_id=WIDGET)
    assert line.captured == 1 and line.captured_amount > 0
    return order


def returned_one(order, deliver):
    [ret] = return_execute(plan=return_plan(order=order, items=[(WIDGET, 1)], reason="Too small"))
    data = fixture("fulfillment_return.json")
    deliver("fulfillment_return.created", data)
    accepted = {
        **data,
        "state": "accepted",
        "items": [{**data["items"][0], "quantityAccepted": 1, "state": "accepted"}],
    }
    deliver("fulfillment_return.accepted", accepted)
    deliver("fulfillment_return.accepted", accepted, event_id="a-second-delivery-of-the-same-news")
    ret.refresh_from_db()
    return ret


def test_by_default_the_refund_is_offered_pre_filled_not_issued(order, deliver, client, django_user_model):
    ret = returned_one(order, deliver)
    assert not Refund.objects.exists()

    lead = django_user_model.objects.create_superuser("lead")
    client.force_login(lead)
    page = client.get(f"/admin/commerce/order/{order.pk}/change/").content.decode()
    assert f"refund/?return={ret.pk}" in page and "Refund the received units" in page
    form = client.get(f"/admin/commerce/order/{order.pk}/refund/?return={ret.pk}").context["form"]
    line = order.lines.get(dr_item_id=WIDGET)
    assert form.initial["what"] == "units" and form.initial["for_return"] == ret.dr_return_id
    assert [value for name, value in form.initial.items() if name.endswith(str(line.pk))] == [1]


def test_with_the_setting_on_the_accepted_units_are_refunded_once(order, deliver, settings):
    settings.REFUND_RETURNS_AUTOMATICALLY = True
    ret = returned_one(order, deliver)

    [refund] = Refund.objects.all()
    assert refund.for_return == ret.dr_return_id and refund.state == Refund.State.REQUESTED
    assert [(line.order_line.dr_item_id, line.quantity) for line in refund.lines.all()] == [(WIDGET, 1)]
    assert refund.request["items"] == [{"itemId": WIDGET, "quantity": 1, "percent": 100}]
