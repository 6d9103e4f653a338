"""What the app sends DR, checked against the request schemas of DR's spec (hardening items 6 and 14)."""

from decimal import Decimal

import pytest

from catalog import dr_mapping
from catalog.models import Sku
from commerce.models import Order
from commerce.services import order_upsert
from digitalriver.errors import ALREADY_DONE_CODES
from fulfillment.services import fulfillment_order_request
from tests.conftest import fixture

from .schemas import contract, extract, spec_only

VALUES = {
    "name": "Widget",
    "description": "A physical widget",
    "tax_code": "4512.1",
    "eccn": "EAR99",
    "hs_code": "8471.30.0100",
    "country_of_origin": "US",
    "part_number": "PN-1",
    "manufacturer_id": "MFR-1",
    "weight": Decimal("12.5"),
    "weight_unit": "oz",
    "allow_oversell": True,
}


def sku(model=Sku.FulfillmentModel.DISTRIBUTED, **values) -> Sku:
    if model == Sku.FulfillmentModel.DIGITAL:
        values = {"tax_code": "4512.2", "part_number": "", "manufacturer_id": "", **values}
    return Sku(sku_id="WIDGET-1", fulfillment_model=model, **{**VALUES, **values})


@pytest.mark.parametrize("model", Sku.FulfillmentModel.values)
def test_the_sku_upsert_body_keeps_drs_spec(model):
    """No allowOversell (not settable on a SKU from 2021-12-13) and no managedFulfillment null."""
    body = dr_mapping.sku_body(sku(model))
    assert spec_only().request_errors("PUT", "/skus/WIDGET-1", body) == []
    assert "allowOversell" not in body
    assert body.get("managedFulfillment", "DRGlobalFulfillment") == "DRGlobalFulfillment"
    assert ("managedFulfillment" in body) is (model == Sku.FulfillmentModel.ORCHESTRATED)


def test_allow_oversell_goes_to_the_inventory_item():
    body = dr_mapping.inventory_item_body(sku(allow_oversell=True))
    assert body["allowOversell"] is True
    assert spec_only().request_errors("POST", "/inventory-items", {"id": "WIDGET-1", **body}) == []


def test_empty_inventory_item_attributes_are_left_out_not_sent_as_null():
    body = dr_mapping.inventory_item_body(sku(hs_code="", manufacturer_id="", allow_oversell=False))
    assert None not in body.values() and "hsCode" not in body and "manufacturerId" not in body
    assert body["allowOversell"] is False
    assert spec_only().request_errors("POST", "/inventory-items/WIDGET-1", body) == []


def test_the_spec_refuses_what_the_sku_push_used_to_send():
    old = {**dr_mapping.sku_body(sku()), "allowOversell": True, "managedFulfillment": None}
    errors = spec_only().request_errors("PUT", "/skus/WIDGET-1", old)
    assert any("'allowOversell' was unexpected" in error for error in errors)
    assert any(error.startswith("PUT /skus/{id} request: managedFulfillment") for error in errors)


@pytest.mark.django_db
def test_the_fulfillment_order_request_keeps_drs_spec_and_attaches_no_reservation(catalog):
    order = order_upsert(data=fixture("order.json"))
    lines = list(Order.objects.get(pk=order.pk).lines.filter(dr_sku_id="dist-1"))
    body = fulfillment_order_request(order, lines)
    assert spec_only().request_errors("POST", "/fulfillment-orders", body) == []
    # The accepted order names a checkout, not a reservation: nothing was reserved, nothing attached.
    assert order.checkout_id.startswith("chk_") and "reservationId" not in body
    assert None not in body.values()
    reserved = fulfillment_order_request(order, lines, reservation_id="chk_5d6e7f80")
    assert reserved["reservationId"] == "chk_5d6e7f80"
    assert spec_only().request_errors("POST", "/fulfillment-orders", reserved) == []


def test_an_unknown_call_is_named():
    assert contract().request_errors("POST", "/reservations", {}) == [
        "POST /reservations: no such operation in DR's spec extract"
    ]


def test_drs_documented_already_complete_code_counts_as_done():
    """`order_already_complete` is in the error-code table of DR's OpenAPI file (no status given)."""
    assert "order_already_complete" in extract()["errorCodes"]
    assert "order_already_complete" in ALREADY_DONE_CODES
