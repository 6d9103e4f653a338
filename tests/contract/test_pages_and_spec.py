"""Where DR's spec and its pages disagree, both readings are handled, and each test says which.

Every reading of tests/contract/schemas.py has an example the spec alone refuses and the pages
allow: when a newer spec names the thing, the first assertion fails and the reading can go.
"""

import pytest

from digitalriver.models import Instruction
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLine
from tests.conftest import fixture, fulfillment_order

from .schemas import PAGE_READINGS, contract, spec_only

SKU = {"name": "W", "taxCode": "4512.1", "eccn": "EAR99", "countryOfOrigin": "US"}

# reading -> (how to check, what), an instance the spec refuses and the page documents.
EXAMPLES = {
    "SKU itemBreadcrumb": ("request", ("PUT", "/skus/W-1", {**SKU, "itemBreadcrumb": "Tools > Widgets"})),
    "a SKU group supplies the compliance fields": ("request", ("PUT", "/skus/W-1", {"name": "W", "skuGroupId": "g"})),
    "managedFulfillment null in an update SKU request": (
        "request",
        ("POST", "/skus/W-1", {"managedFulfillment": None}),
    ),
    "fulfillment order ids are strings": ("schema", ("GlobalFulfillmentOrder", fixture("fulfillment_order.json"))),
    "backordered line items": (
        "schema",
        ("LineItem", {"id": 1, "quantity": 2, "ordered": 2, "backordered": 1, "totalBackordered": 1}),
    ),
    "an order's shippingChoice.id": ("schema", ("ShippingChoice", {"id": "394164024336", "serviceLevel": "SG"})),
    "expanded productDetails": ("schema", ("ProductDetails", {"id": "dist-1", "physical": True, "metadata": {}})),
    "a capture's fulfillmentId": ("schema", ("Capture", {"id": "c", "amount": 1.0, "fulfillmentId": "ful_1"})),
    "event envelope": ("schema", ("Event", fixture("event_order_accepted.json"))),
    "an order's invoice and credit memo files carry liveMode": (
        "schema",
        ("File", {"id": "f", "url": "https://api.digitalriver.com/files/f/content", "liveMode": False}),
    ),
    "a created return carries liveMode": ("schema", ("CreateReturnsResponse", {"id": "ret_1", "liveMode": False})),
}


def errors(contract_, kind, args):
    if kind == "request":
        return contract_.request_errors(*args)
    return contract_.schema_errors(*args)


def test_every_reading_has_an_example():
    assert sorted(EXAMPLES) == sorted(reading.name for reading in PAGE_READINGS)


@pytest.mark.parametrize("reading", PAGE_READINGS, ids=lambda reading: reading.name)
def test_the_spec_alone_refuses_what_the_page_documents(reading):
    kind, args = EXAMPLES[reading.name]
    assert errors(spec_only(), kind, args), f"the spec now allows it: drop the reading of {reading.page}"
    assert errors(contract(), kind, args) == []


def test_a_sku_group_still_needs_something_to_supply_the_fields():
    assert contract().request_errors("PUT", "/skus/W-1", {"name": "W"})


def test_null_removes_managed_fulfillment_only_in_the_update_request():
    """The page documents null in an update SKU request; the upsert never gets one."""
    assert contract().request_errors("PUT", "/skus/W-1", {**SKU, "managedFulfillment": None})
    assert contract().request_errors("POST", "/skus/W-1", {"managedFulfillment": "Other"})


# --- the app under both readings ------------------------------------------------------------------


def sent() -> list[dict]:
    return [i.payload for i in Instruction.objects.filter(kind=POST_FULFILLMENT).order_by("pk")]


@pytest.mark.django_db
@pytest.mark.parametrize("id_type", [str, int], ids=["pages: strings", "spec: numbers"])
def test_fulfillment_order_ids_as_strings_or_numbers_mirror_the_same(accepted_order, deliver, id_type):
    data = fulfillment_order(pending=1, cancelled=1)
    data["id"] = id_type(data["id"])
    data["items"][0]["id"] = id_type(data["items"][0]["id"])
    deliver("fulfillment_order.cancelled", data)
    assert FulfillmentOrder.objects.get().dr_fulfillment_order_id == "700412580336"
    assert FulfillmentOrderLine.objects.get().dr_item_id == "700412590336"
    assert [payload["items"] for payload in sent()] == [[{"itemId": "143040030336", "cancelQuantity": 1}]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    ["event_fulfillment_order_cancelled.json", "event_fulfillment_order_cancelled_in_cancelled_state.json"],
    ids=["lifecycle: shipped", "cancelled events: cancelled"],
)
def test_a_cancel_after_a_shipment_releases_the_same_whichever_state_dr_gives_the_order(accepted_order, deliver, name):
    """global-fulfillments.md says a partly shipped fulfillment order is `shipped`, and also that a
    fulfillment_order.cancelled carries one "in a cancelled state": the counters decide, not the state."""
    event = fixture(name)
    deliver(event["type"], event["data"]["object"], event_id=event["id"])
    line = FulfillmentOrderLine.objects.get()
    assert (line.shipped, line.cancelled, line.pending) == (1, 1, 0)
    assert [payload["items"] for payload in sent()] == [[{"itemId": "143040030336", "cancelQuantity": 1}]]
