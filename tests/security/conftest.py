"""People in each role, DR mocked at the client's edge, and one of each object the admin's buttons need."""

import re

import pytest
import responses
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from rest_framework.authtoken.models import Token

from catalog.models import Sku
from commerce.models import Document, Order
from tests.conftest import restore_roles

ROLES = ("Merchandisers", "Customer service", "Operations")
#: Signed in to the admin with no group: sees nothing, may do nothing.
NO_ROLE = "no role"
DR_TEST_URL = "https://dr.security.test"


def person(name: str, *, group: str | None = None, superuser: bool = False) -> User:
    # No password: hashing one costs a third of a second, and the tests sign in with force_login or a token.
    user = User.objects.create(username=re.sub(r"\W", "_", name.lower()), is_staff=True)
    if superuser:
        user.is_superuser = True
        user.save(update_fields=["is_superuser"])
    if group is not None:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def people(db) -> dict[str, User]:
    """A staff user in each role, one with none, keyed by role name."""
    restore_roles()  # an earlier transactional test's flush empties the groups the migrations made
    if apps.is_installed("operations"):
        # operations/migrations/0002 lets Operations read the alerts; restore_roles does not know that one.
        Group.objects.get(name="Operations").permissions.add(
            *Permission.objects.filter(content_type__app_label="operations", codename="view_operationsalert")
        )
    users = {role: person(role, group=role) for role in ROLES}
    users[NO_ROLE] = person(NO_ROLE)
    return users


def token_for(user: User) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def dr(settings):
    """Every call to DR answers 404 at once: views that read DR take their 'DR said no' path, no network."""
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.DR_RATE_LIMIT_PER_SECOND = 10_000
    not_found = {"type": "not_found", "errors": [{"code": "not_found", "message": "Not found."}]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mocked.add(method, re.compile(re.escape(DR_TEST_URL) + r"/.*"), json=not_found, status=404)
        yield mocked


@pytest.fixture
def objects(db):
    """One SKU, one order and its invoice, for the admin's per-object buttons and the API's detail paths."""
    sku = Sku.objects.create(
        sku_id="SEC-1",
        name="Security widget",
        tax_code="4512.1",
        eccn="EAR99",
        country_of_origin="US",
        part_number="PN-SEC-1",
    )
    order = Order.objects.create(
        dr_order_id="240000000001",
        state=Order.State.ACCEPTED,
        currency="USD",
        email="ada@example.com",
        dr_created_at=timezone.now(),
        total_amount="10.00",
    )
    document = Document.objects.create(
        order=order, dr_file_id="6e5bf525-3907-40c5-86a9-f14ce4f33f35", purpose=Document.Purpose.INVOICE
    )
    return {"sku": sku, "order": order, "document": document}
