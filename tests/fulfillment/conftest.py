"""The app and the sandbox talking over real HTTP on one live server: pushes, orders, warehouse
actions, signed deliveries to our inbox, and the outbox sending back."""

import pytest

from catalog.models import Sku
from catalog.services import sku_create, skus_push
from digitalriver.services.outbox import outbox_sweep
from sandbox.delivery import deliver_due
from sandbox.models import Order as SandboxOrder
from sandbox.services.orders import Line, order_place

COMMON = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "weight": 1, "weight_unit": "lb"}


class Flow:
    def __init__(self, live_server):
        self.live_server = live_server

    def sku(self, sku_id: str, model=Sku.FulfillmentModel.DISTRIBUTED, **values) -> Sku:
        values = {"name": f"Product {sku_id}", "part_number": f"PN-{sku_id}", **COMMON, **values}
        if model == Sku.FulfillmentModel.DIGITAL:
            values.update(tax_code="4512.2", part_number="", weight=None)
        sku = sku_create(values={"sku_id": sku_id, "fulfillment_model": model, **values})
        skus_push(skus=[sku])
        self.settle()
        sku = Sku.objects.get(pk=sku.pk)
        assert sku.sync_state == Sku.SyncState.SYNCED, sku.sync_error
        return sku

    def place(self, *lines: tuple[str, int], state="accepted") -> SandboxOrder:
        order = order_place(lines=[Line(sku_id=sku_id, quantity=quantity) for sku_id, quantity in lines], state=state)
        self.settle()
        return order

    def settle(self, rounds: int = 20) -> None:
        """Deliver events and send instructions until nothing moves (jobs run inline after commit)."""
        for _ in range(rounds):
            moved = deliver_due() + outbox_sweep(ignore_backoff=True).sent
            if not moved:
                return
        raise AssertionError("the flow did not settle")


@pytest.fixture
def flow(live_server, settings):
    settings.DR_API_BASE_URL = f"{live_server.url}/sandbox/api"
    settings.SANDBOX_DEFAULT_WEBHOOK_URL = f"{live_server.url}/webhooks/digitalriver/"
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    return Flow(live_server)
