"""Shared catalog fixtures: SKUs with valid values, a merchandiser, DR mocked at the client's edge."""

from decimal import Decimal

import pytest
import responses
from django.contrib.auth.models import Group, User

from catalog.models import Sku
from catalog.services import sku_create
from digitalriver.client import reset_client

DR_TEST_URL = "https://dr.test"

VALID_SKU_VALUES = {
    "name": "Widget",
    "fulfillment_model": Sku.FulfillmentModel.DISTRIBUTED,
    "tax_code": "4512.1",
    "eccn": "EAR99",
    "hs_code": "8471.30.0100",
    "country_of_origin": "US",
    "part_number": "PN-1",
    "manufacturer_id": "MFR-1",
    "weight": Decimal("12.5"),
    "weight_unit": "oz",
}


@pytest.fixture
def sku_factory(db):
    """Create a valid SKU through the service; pass field values to override."""

    def create(sku_id: str, **values) -> Sku:
        return sku_create(values={**VALID_SKU_VALUES, "sku_id": sku_id, **values})

    return create


@pytest.fixture
def merchandiser(db):
    """A staff user in the Merchandisers group (its permissions come from the data migration)."""
    user = User.objects.create_user("merch", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Merchandisers"))
    return user


@pytest.fixture
def merchandiser_client(client, merchandiser):
    client.force_login(merchandiser)
    return client


@pytest.fixture
def dr_responses(settings):
    """DR answers registered with ``responses`` at https://dr.test; anything else fails to connect."""
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.TASKS_MODE = "inline"
    reset_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    reset_client()
