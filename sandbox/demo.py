"""A walkable demo, seeded through the sandbox exactly as real traffic would arrive.

SKUs are pushed through the outbox, orders are placed at the sandbox's storefront, and everything
after that (webhooks, fulfillment orders, captures) happens through the running server: the demo
only plays the shopper and the warehouse, and waits for the app to do its part.
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from catalog.models import Sku
from catalog.services import sku_create, skus_push
from commerce.models import Order
from core.jobs import jobs_wait
from fulfillment.models import FulfillmentOrder

from .demo_reversals import Wait, reversals_seeded, seed_reversals

logger = logging.getLogger(__name__)

COMMON: dict[str, Any] = {
    "eccn": "EAR99",
    "country_of_origin": "US",
    "weight": 2,
    "weight_unit": "lb",
    "tax_code": "4512.1",
}
DEMO_SKUS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("DEMO-KEYBOARD", "Mechanical keyboard", Sku.FulfillmentModel.DISTRIBUTED, {"part_number": "KB-100"}),
    ("DEMO-MOUSE", "Wireless mouse", Sku.FulfillmentModel.DISTRIBUTED, {"part_number": "MS-200"}),
    ("DEMO-MONITOR", "27-inch monitor", Sku.FulfillmentModel.ORCHESTRATED, {"part_number": "MN-270"}),
    ("DEMO-DESK", "Standing desk", Sku.FulfillmentModel.THIRD_PARTY, {"part_number": "DK-900"}),
    (
        "DEMO-SOFTWARE",
        "Productivity suite (download)",
        Sku.FulfillmentModel.DIGITAL,
        {"tax_code": "4512.2", "weight": None},
    ),
]


class DemoError(Exception):
    pass


def _shopper(name: str, email: str) -> dict:
    from sandbox.services.orders import DEFAULT_SHIP_TO

    return {"email": email, "ship_to": {**DEFAULT_SHIP_TO, "name": name, "email": email}}


def demo_seed(
    *, say: Callable[[str], None] = print, timeout: float = 60.0, tick: Callable[[], object] | None = None
) -> None:
    """Seed the demo once; a second run finds it there and does nothing.

    Each wait for the server polls; ``tick`` (if given) runs before each poll, for a caller that
    delivers the sandbox's events itself instead of the server's delivery loop (the tests).
    """

    def wait(done: Callable[[], bool], what: str) -> None:
        _wait(done, timeout, what, tick)

    try:
        _seed(say=say, wait=wait)
    finally:
        # The calls queued last (the return's refund) are sent before `manage.py demo` exits.
        jobs_wait(timeout)


def _seed(*, say: Callable[[str], None], wait: Wait) -> None:
    from sandbox.services.orders import Line, order_place
    from sandbox.services.warehouse import warehouse_backorder, warehouse_cancel, warehouse_ship

    if Sku.objects.filter(sku_id__startswith="DEMO-").exists():
        if reversals_seeded():
            say("demo: already seeded")
        else:  # a demo seeded before the reversals existed
            seed_reversals(say=say, wait=wait, shopper=_shopper)
        return
    for sku_id, name, model, values in DEMO_SKUS:
        sku_create(values={"sku_id": sku_id, "name": name, "fulfillment_model": model, **{**COMMON, **values}})
    skus_push(skus=Sku.objects.filter(sku_id__startswith="DEMO-"))
    wait(
        lambda: not Sku.objects.filter(sku_id__startswith="DEMO-").exclude(sync_state="synced").exists(),
        "the demo SKUs to be pushed",
    )
    say(f"demo: pushed {len(DEMO_SKUS)} SKUs")

    shipped = order_place(
        lines=[Line("DEMO-KEYBOARD", 3), Line("DEMO-MOUSE", 1)], **_shopper("Ada Lovelace", "ada@example.com")
    )
    fulfillment_order = _fulfillment_order_of(shipped.dr_id, wait)
    lines = {
        line.order_line.dr_sku_id: line.dr_item_id for line in fulfillment_order.lines.select_related("order_line")
    }
    warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(lines["DEMO-KEYBOARD"], 2)])
    warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(lines["DEMO-KEYBOARD"], 1)])
    warehouse_cancel(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(lines["DEMO-MOUSE"], 1)])
    say(f"demo: order {shipped.dr_id} shipped 3 keyboards and cancelled the mouse")

    backordered = order_place(lines=[Line("DEMO-MOUSE", 2)], **_shopper("Grace Hopper", "grace@example.com"))
    fulfillment_order = _fulfillment_order_of(backordered.dr_id, wait)
    item_id = fulfillment_order.lines.get().dr_item_id
    warehouse_backorder(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id,
        item_id=item_id,
        quantity=2,
        available_time=timezone.now() + timedelta(days=10),
    )
    say(f"demo: order {backordered.dr_id} is backordered")

    mixed = order_place(
        lines=[Line("DEMO-MONITOR", 1), Line("DEMO-DESK", 1), Line("DEMO-SOFTWARE", 1)],
        **_shopper("Alan Turing", "alan@example.com"),
    )
    wait(lambda: Order.objects.filter(dr_order_id=mixed.dr_id).exists(), f"order {mixed.dr_id}")
    say(f"demo: order {mixed.dr_id} mixes orchestrated, third-party and digital lines")

    order_place(
        lines=[Line("DEMO-KEYBOARD", 1)], state="in_review", **_shopper("Edsger Dijkstra", "edsger@example.com")
    )
    say("demo: one more order waits in fraud review")
    seed_reversals(say=say, wait=wait, shopper=_shopper)


def _fulfillment_order_of(dr_order_id: str, wait: Wait) -> FulfillmentOrder:
    wait(
        lambda: FulfillmentOrder.objects.filter(order__dr_order_id=dr_order_id, created_by_us=True).exists(),
        f"the fulfillment order of {dr_order_id}",
    )
    return FulfillmentOrder.objects.get(order__dr_order_id=dr_order_id, created_by_us=True)


def _wait(done: Callable[[], bool], timeout: float, what: str, tick: Callable[[], object] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if done():
            return
        time.sleep(0.25)
    raise DemoError(f"gave up waiting for {what} after {timeout:.0f}s: is the server running with the sandbox?")
