"""Shared catalog fixtures: SKUs with valid values, DR mocked at the client's edge, and the sandbox
on a live server playing DR (the merchandiser is in tests/conftest.py)."""

from decimal import Decimal

import pytest
import responses

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
def dr_responses(settings):
    """DR answers registered with ``responses`` at https://dr.test; anything else fails to connect."""
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.TASKS_MODE = "inline"
    reset_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    reset_client()


@pytest.fixture
def dr(live_server, transactional_db, settings):
    """Point the DR client at the sandbox on the live server (helpers in fixtures_flow.py)."""
    settings.DR_API_BASE_URL = live_server.url + "/sandbox/api"
    settings.CATALOG_PUSH_DELAY_SECONDS = 2.0
    settings.CATALOG_AUTO_PUSH = True
    reset_client()
    yield live_server
    reset_client()
