"""One rule for "refresh from DR" on both surfaces: re-reading DR's copy rewrites the order mirror, so
the admin's button and `POST /api/orders/<id>/refresh/` both need commerce.change_order (with the
right to read the order). Customer service and Operations have it; Merchandisers, people with no
role and people who may only read orders do not."""

import pytest
import responses
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from commerce.models import Order
from core.roles import CUSTOMER_SERVICE, MERCHANDISERS, OPERATIONS
from desk.permissions import REFRESH_ORDER_PERMISSIONS, can_refresh_order
from tests.conftest import restore_roles

pytestmark = pytest.mark.django_db

DR_TEST_URL = "https://dr.refresh.test"
VIEW_ONLY = "reads orders only"
NO_ROLE = "no role"
#: who → may refresh
EXPECTED = {CUSTOMER_SERVICE: True, OPERATIONS: True, MERCHANDISERS: False, VIEW_ONLY: False, NO_ROLE: False}


def someone(who: str) -> User:
    user = User.objects.create(username=who.replace(" ", "_"), is_staff=True)
    if who == VIEW_ONLY:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="commerce", codename="view_order"))
    elif who != NO_ROLE:
        user.groups.add(restore_roles()[who])
    return User.objects.get(pk=user.pk)  # no permission cache


@pytest.fixture
def order():
    return Order.objects.create(
        dr_order_id="240000000020",
        state=Order.State.ACCEPTED,
        currency="USD",
        email="ada@example.com",
        dr_created_at=timezone.now(),
        total_amount="10.00",
    )


@pytest.fixture
def dr(settings):
    """DR does not know the order: an allowed refresh gets as far as asking, and says DR said no."""
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_CLIENT_MAX_RETRIES = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get(
            f"{DR_TEST_URL}/orders/240000000020",
            status=404,
            json={"type": "not_found", "errors": [{"code": "not_found", "message": "Not found."}]},
        )
        yield mocked


def test_the_rule_is_change_order_with_view_order():
    assert set(REFRESH_ORDER_PERMISSIONS) == {"commerce.view_order", "commerce.change_order"}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_the_rule_per_role(who):
    assert can_refresh_order(someone(who)) is EXPECTED[who]


@pytest.mark.parametrize("who", list(EXPECTED))
def test_the_admin_button_and_its_view_follow_the_rule(who, order, dr):
    client = Client()
    client.force_login(someone(who))
    page = client.get(reverse("admin:commerce_order_change", args=[order.pk]))
    response = client.post(reverse("admin:commerce_order_refresh", args=[order.pk]))
    if EXPECTED[who]:
        assert page.status_code == 200 and 'id="refresh-from-dr"' in page.content.decode()
        assert response.status_code == 302
        assert len(dr.calls) == 1
    else:
        assert page.status_code == 403 or 'id="refresh-from-dr"' not in page.content.decode()
        assert response.status_code == 403
        assert not dr.calls


@pytest.mark.parametrize("who", list(EXPECTED))
def test_the_api_follows_the_same_rule(who, order, dr):
    client = APIClient()
    client.force_authenticate(someone(who))
    response = client.post(f"/api/orders/{order.dr_order_id}/refresh/")
    if EXPECTED[who]:
        assert response.status_code == 404, response.content  # allowed: DR was asked and does not know it
        assert len(dr.calls) == 1
    else:
        assert response.status_code == 403
        assert "commerce.change_order" in response.json()["detail"]
        assert not dr.calls
