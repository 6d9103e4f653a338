"""Two handlers of a new order's events at once, on PostgreSQL: one INSERT goes in, the other waits for
its commit and updates the row it then reads with its lock (commerce.services.order_upsert_telling)."""

import threading

import pytest

from catalog.models import Sku
from commerce import services
from commerce.models import Charge, Order, OrderLine
from digitalriver.models import Instruction
from fulfillment.services import order_mirror
from tests.conftest import dr_order, in_threads


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("newer_first", [True, False])
def test_two_events_of_a_new_order_at_once(monkeypatch, newer_first):
    common = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "part_number": "P-1"}
    Sku.objects.create(sku_id="dist-1", name="Distributed widget", **common)
    Sku.objects.create(sku_id="orch-1", name="M", fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED, **common)
    both_looked = threading.Barrier(2)
    original = services.locked_row

    def locked_row_then_wait(queryset, **lookup):
        row = original(queryset, **lookup)
        both_looked.wait(timeout=10)  # both saw no order: both go to the INSERT
        return row

    monkeypatch.setattr(services, "locked_row", locked_row_then_wait)
    snapshots = [
        dr_order(state="pending_payment", updatedTime="2026-11-20T09:59:00.000Z"),
        dr_order(),  # accepted, newer
    ]
    if newer_first:
        snapshots.reverse()
    in_threads(2, lambda i: order_mirror(data=snapshots[i]))

    assert Order.objects.count() == 1
    order = Order.objects.get()
    assert order.state == Order.State.ACCEPTED
    assert OrderLine.objects.count() == 2 and Charge.objects.count() == 1
    assert Instruction.objects.count() == 1
