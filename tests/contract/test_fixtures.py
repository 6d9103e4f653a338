"""Every DR fixture has the shape DR documents: the schema tests/fixtures/dr/README.md names for it."""

import re

import pytest

from tests.conftest import FIXTURES, fixture

from .schemas import contract

ROW = re.compile(r"^\| `(?P<name>[a-z_]+\.json)` \| `(?P<schema>[^`]+)` \| (?P<page>.+) \|$")


def table() -> dict[str, str]:
    rows = {}
    for line in (FIXTURES / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["name"]] = match["schema"]
    return rows


def test_the_readme_names_every_fixture_and_no_other():
    assert sorted(table()) == sorted(path.name for path in FIXTURES.glob("*.json"))


@pytest.mark.parametrize(("name", "schema"), sorted(table().items()))
def test_fixture_has_drs_documented_shape(name, schema):
    data = fixture(name)
    the_contract = contract()
    if schema == "-":
        pytest.skip(f"{name}: no schema checked (see the README)")
    elif schema == "Event":
        errors = the_contract.event_errors(data)
    elif " " in schema:
        method, path, status = schema.split(" ")
        errors = the_contract.answer_errors(method, path, int(status), data)
    else:
        errors = the_contract.schema_errors(schema, data)
    assert errors == []


def test_order_state_transitions_are_keyed_by_drs_snake_case_states():
    order = fixture("order.json")
    assert set(order["stateTransitions"]) == {"pending_payment", "accepted"}
    assert contract().schema_errors("Order", {**order, "stateTransitions": {"pendingPayment": "2026-11-20T10:00:00Z"}})


def test_the_quantity_too_large_error_is_drs_own():
    error = fixture("error_quantity_too_large.json")["errors"][0]
    assert error == {
        "code": "quantity_too_large",
        "parameter": "quantity",
        "message": "Sum of quantity and cancelQuantity may not exceed sku quantity of the order.",
    }


def test_fulfillment_orders_carry_no_updated_time():
    """The spec's GlobalFulfillmentOrder names no updatedTime: a snapshot is dated by its event."""
    fulfillment_order = fixture("fulfillment_order.json")
    assert "updatedTime" not in fulfillment_order
    assert contract().schema_errors(
        "GlobalFulfillmentOrder", {**fulfillment_order, "updatedTime": "2026-11-20T10:00:00Z"}
    )
