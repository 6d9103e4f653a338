"""Password guessing on the admin's sign-in is locked out (django-axes): after AXES_FAILURE_LIMIT wrong
passwords for one username from one address, that pair is refused for AXES_COOLOFF_MINUTES, even with
the right password, with a readable 429; a success resets the count. Other addresses are not locked
out, force_login (the test suite's) and DRF's token auth are unaffected."""

import io
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import restore_roles

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "correct-horse-battery-staple-7"
ADDRESS = "192.0.2.10"  # TEST-NET-1: the test client's REMOTE_ADDR, nothing is sent anywhere
OTHER_ADDRESS = "198.51.100.20"


@pytest.fixture
def agent():
    user = User.objects.create_user("agent", password=PASSWORD, is_staff=True)
    user.groups.add(restore_roles()["Customer service"])
    return user


def sign_in(password: str, *, address: str = ADDRESS, username: str = "agent"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return response, client


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(times: int, **where) -> None:
    for _ in range(times):
        response, client = sign_in("wrong-password", **where)
        assert response.status_code == 200  # the form again, with Django's own error
        assert not signed_in(client)


def test_the_defaults():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def lock_out() -> None:
    """Four wrong passwords are answered with the form; the fifth with the lockout."""
    fail(4)
    assert sign_in("wrong-password")[0].status_code == 429


def test_five_wrong_passwords_lock_the_username_at_that_address_out_with_a_readable_429(agent):
    lock_out()
    response, client = sign_in(PASSWORD)
    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many failed sign-ins" in text and "15 minutes" in text
    assert not signed_in(client)
    assert AccessAttempt.objects.get(username="agent", ip_address=ADDRESS).failures_since_start >= 5


def test_guessing_gets_no_further(agent):
    statuses = [sign_in(f"guess-{number}")[0].status_code for number in range(50)]
    assert statuses[:4] == [200] * 4
    assert set(statuses[4:]) == {429}
    assert sign_in(PASSWORD)[0].status_code == 429


def test_four_wrong_passwords_are_not_yet_a_lockout(agent):
    fail(4)
    response, client = sign_in(PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_a_success_resets_the_count(agent):
    fail(4)
    assert sign_in(PASSWORD)[0].status_code == 302
    fail(4)
    response, client = sign_in(PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_another_address_is_not_locked_out(agent):
    lock_out()
    response, client = sign_in(PASSWORD, address=OTHER_ADDRESS)
    assert response.status_code == 302 and signed_in(client)


def test_the_lockout_ends_after_the_cool_off(agent):
    lock_out()
    assert sign_in(PASSWORD)[0].status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response, client = sign_in(PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_an_administrator_unlocks_a_username(agent):
    lock_out()
    call_command("axes_reset_username", "agent", stdout=io.StringIO())
    response, client = sign_in(PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_force_login_and_token_auth_are_unaffected_by_a_lockout(agent):
    lock_out()
    assert sign_in(PASSWORD)[0].status_code == 429
    client = Client()
    client.force_login(agent)
    assert client.get("/admin/commerce/order/").status_code == 200
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")
    assert api.get("/api/orders/").status_code == 200


def test_client_login_needs_the_request_for_axes(agent):
    client = Client()
    assert client.login(request=HttpRequest(), username="agent", password=PASSWORD)
    assert client.get("/admin/commerce/order/").status_code == 200
