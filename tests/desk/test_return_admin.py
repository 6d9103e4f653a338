"""The order page's returns: "Start a return" (form → confirmation in plain words → queued), refused
with the reason; "Record return received" for a partner return; the returns section."""

import pytest
import responses
from django.urls import reverse

from fulfillment.models import Return
from fulfillment.returns import return_execute, return_plan
from tests.conftest import fixture
from tests.fulfillment.order_stories import change_url, customer_service
from tests.fulfillment.returns_at_dr import (
    ReturnsAtDR,
    partner_gadgets_shipped,
    sweep,
    use_fake_dr,
    warehouse_shipped_one,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


@pytest.fixture
def dr(settings):
    use_fake_dr(settings)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ReturnsAtDR(rsps)


@pytest.fixture
def agent(client, django_user_model):
    client.force_login(customer_service(django_user_model))
    return client


def test_an_agent_starts_a_return_after_reading_what_happens(agent, dr, deliver):
    order = warehouse_shipped_one(deliver)
    url = reverse("admin:commerce_order_start_return", args=[order.pk])
    line = order.lines.get(dr_item_id="143040030336")
    form = agent.get(url)
    assert form.status_code == 200
    confirm = agent.post(url, {f"line_{line.pk}": 1, "reason": "Too small"})
    text = confirm.content.decode()
    assert "Ask DR&#x27;s warehouse to take back 1 unit of Distributed widget" in text
    assert "their refund is offered" in text.lower()
    assert not Return.objects.exists()
    done = agent.post(
        url, {f"line_{line.pk}": 1, "reason": "Too small", "confirm": "1", "plan": confirm.context["plan_fingerprint"]}
    )
    assert done.status_code == 302 and done["Location"].endswith("#returns")
    ret = Return.objects.get()
    assert ret.requested_by.username == "alice"
    deliver("fulfillment_return.pending", fixture("fulfillment_return_pending.json"))
    page = agent.get(change_url(order)).content.decode()
    assert 'id="order-returns"' in page and "Approved: waiting for the goods" in page
    assert "10380 Bren Rd W" in page and "asked by the customer" in page
    timeline = [entry.sentence for entry in agent.get(change_url(order)).context["page"].timeline]
    assert "alice started a return of 1 unit of Distributed widget" in timeline
    assert "Return of 1 unit of Distributed widget: approved: waiting for the goods" in timeline
    technical = [entry.sentence for entry in agent.get(change_url(order) + "?technical=1").context["page"].timeline]
    assert any(sentence.startswith("Queued: Ask DR's warehouse to take back 1 unit") for sentence in technical)
    assert not any(sentence.startswith("Queued:") for sentence in timeline), "the story leaves the machinery out"


def test_too_many_units_are_refused_with_the_reason(agent, dr, deliver):
    order = warehouse_shipped_one(deliver)
    url = reverse("admin:commerce_order_start_return", args=[order.pk])
    managed = order.lines.get(dr_item_id="143040040336")
    response = agent.post(url, {f"line_{managed.pk}": 1, "reason": "Too small"})
    assert "None of this line can be returned now: nothing has shipped yet" in response.content.decode()
    assert not Return.objects.exists()


def test_an_agent_records_a_partner_parcel_received(agent, dr):
    order = partner_gadgets_shipped()
    gadget = order.lines.get(dr_sku_id="3p-1")
    [ret] = return_execute(plan=return_plan(order=order, items=[(gadget.dr_item_id, 3)], reason="Wrong colour"))
    sweep()
    page = agent.get(change_url(order)).content.decode()
    assert "Record return received" in page
    url = reverse("admin:commerce_order_return_received", args=[order.pk]) + f"?return={ret.pk}"
    field = f"line_{gadget.pk}"
    confirm = agent.post(url, {field: 1})
    assert "never refunds by itself" in confirm.content.decode()
    done = agent.post(url, {field: 1, "confirm": "1", "plan": confirm.context["plan_fingerprint"]})
    assert done.status_code == 302
    sweep()
    gadget.refresh_from_db()
    assert (gadget.returned, gadget.return_requested) == (1, 2)
