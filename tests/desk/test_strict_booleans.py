"""`"all"` of `POST /api/orders/<id>/cancellations/` takes only JSON's true and false: "yes", "true", 1
and friends are 400 naming the field, never a cancellation of the whole order."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from commerce.models import Order
from desk.serializers import CancellationInputSerializer
from fulfillment.models import CancellationRequest
from tests.conftest import user_with

pytestmark = pytest.mark.django_db

NOT_BOOLEANS = ["yes", "no", "true", "false", "True", "on", "1", "0", 1, 0, 1.0, "", [], {}]


@pytest.fixture
def order():
    return Order.objects.create(
        dr_order_id="240000000019",
        state=Order.State.ACCEPTED,
        currency="USD",
        email="ada@example.com",
        dr_created_at=timezone.now(),
        total_amount="10.00",
    )


@pytest.fixture
def agent():
    client = APIClient()
    client.force_authenticate(user_with("agent", "view_order", "cancel_order_lines"))
    return client


@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
def test_the_serializer_takes_only_json_booleans(order, value):
    serializer = CancellationInputSerializer(data={"all": value}, context={"order": order})
    assert not serializer.is_valid()
    assert list(serializer.errors) == ["all"]
    assert "true or false" in " ".join(serializer.errors["all"])


@pytest.mark.parametrize("value", [True, False])
def test_true_and_false_are_booleans(order, value):
    serializer = CancellationInputSerializer(data={"all": value}, context={"order": order})
    assert serializer.is_valid() is value, serializer.errors
    if value:
        assert serializer.service_arguments() == {"items": [], "cancel_all": True, "reason": ""}


def test_the_default_is_false(order):
    serializer = CancellationInputSerializer(data={"items": []}, context={"order": order})
    serializer.is_valid()
    assert "all" not in serializer.errors


@pytest.mark.parametrize("value", ["yes", "true", 1], ids=repr)
def test_the_api_answers_400_naming_all_and_cancels_nothing(order, agent, value):
    response = agent.post(f"/api/orders/{order.dr_order_id}/cancellations/", {"all": value}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["all"]
    assert "true or false" in " ".join(response.json()["all"])
    assert not CancellationRequest.objects.exists()
