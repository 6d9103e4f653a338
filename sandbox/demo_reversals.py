"""The demo's reversals: a return received and refunded, a refund the bank fails, an order in dispute.

Each goes through our services as customer service would (``return_plan``/``return_execute``,
``refund_request``, ``refund_plan``/``refund_execute``) and through the sandbox as the warehouse, the
bank and the customer's bank would. The three orders move together, one stage at a time, so the
demo waits for the server once per stage rather than once per order. The bank answers a refund a few
seconds later from the server's delivery loop (the sandbox's ``refund_delay_seconds``): the refund
completes (and a credit memo follows) or fails (and the order gets a refund_failed attention item)
after the demo has returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model

from commerce.models import Order, OrderLine
from commerce.refunds import refund_execute, refund_plan, refund_request
from fulfillment.models import FulfillmentOrder, Return
from fulfillment.returns import return_execute, return_plan, return_refund_offer

#: DR's test card whose refunds the bank fails (sandbox/services/cards.py).
REFUND_FAILS_CARD = "4000000000004111"
FAILED_REFUND = Decimal("10.00")
#: The first order these scenarios place: once it is at the sandbox, they are not seeded again.
RETURNED_EMAIL = "katherine@example.com"

Wait = Callable[[Callable[[], bool], str], None]


@dataclass
class Placed:
    dr_order_id: str
    what: str

    def order(self) -> Order:
        return Order.objects.get(dr_order_id=self.dr_order_id)


def reversals_seeded() -> bool:
    from sandbox.models import Order as SandboxOrder

    return SandboxOrder.objects.filter(email=RETURNED_EMAIL).exists()


def seed_reversals(*, say: Callable[[str], None], wait: Wait, shopper: Callable[[str, str], dict]) -> None:
    from sandbox.services.disputes import dispute_open
    from sandbox.services.orders import Line, order_place
    from sandbox.services.returns import fulfillment_return_approve, fulfillment_return_receive

    returned = Placed(
        order_place(lines=[Line("DEMO-KEYBOARD", 2)], **shopper("Katherine Johnson", RETURNED_EMAIL)).dr_id,
        "returned",
    )
    refused = Placed(
        order_place(
            lines=[Line("DEMO-KEYBOARD", 1), Line("DEMO-MOUSE", 1)],
            card=REFUND_FAILS_CARD,
            **shopper("Barbara Liskov", "barbara@example.com"),
        ).dr_id,
        "refund fails",
    )
    disputed = Placed(
        order_place(lines=[Line("DEMO-MOUSE", 1)], **shopper("Donald Knuth", "donald@example.com")).dr_id, "disputed"
    )
    placed = [returned, refused, disputed]

    # The warehouse ships everything; we capture it.
    wait(lambda: all(_our_fulfillment_order(p.dr_order_id) for p in placed), "the demo's fulfillment orders")
    for one in placed:
        _ship_everything(_our_fulfillment_order(one.dr_order_id))
    wait(lambda: all(_captured(p.order()) for p in placed), "the demo's captures")

    # Customer service starts a return of one keyboard; the bank fails a refund; the customer's bank
    # disputes the third order.
    agent = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    order = returned.order()
    keyboard = order.lines.get(dr_sku_id="DEMO-KEYBOARD")
    [ret] = return_execute(
        plan=return_plan(order=order, items=[(keyboard.dr_item_id, 1)], reason="Two keys do not register"),
        by=agent,
    )
    refund_execute(
        plan=refund_plan(order=refused.order(), amount=FAILED_REFUND, reason="Goodwill: the parcel arrived late"),
        by=agent,
    )
    dispute_open(order_id=disputed.dr_order_id)

    # The warehouse approves the return and receives the keyboard; we refund the units it accepted.
    wait(lambda: bool(Return.objects.get(pk=ret.pk).dr_return_id), "DR to create the demo's return")
    dr_return_id = Return.objects.get(pk=ret.pk).dr_return_id
    fulfillment_return_approve(return_id=dr_return_id)
    fulfillment_return_receive(return_id=dr_return_id)
    wait(lambda: Return.objects.get(pk=ret.pk).state == Return.State.ACCEPTED, "the demo's return to be received")
    ret = Return.objects.get(pk=ret.pk)
    refund_request(
        order=returned.order(),
        items=return_refund_offer(ret=ret),
        reason="Returned: two keys do not register",
        for_return=dr_return_id,
        by=agent,
    )
    wait(lambda: Order.objects.get(dr_order_id=disputed.dr_order_id).dispute_open, "the demo's dispute")
    say(f"demo: order {returned.dr_order_id} returned a keyboard; its refund completes in a few seconds")
    say(f"demo: order {refused.dr_order_id} was refunded {FAILED_REFUND} on a card whose refunds fail")
    say(f"demo: order {disputed.dr_order_id} is in dispute")


def _our_fulfillment_order(dr_order_id: str) -> FulfillmentOrder | None:
    return FulfillmentOrder.objects.filter(order__dr_order_id=dr_order_id, created_by_us=True).first()


def _ship_everything(fulfillment_order: FulfillmentOrder | None) -> None:
    from sandbox.services.warehouse import warehouse_ship

    assert fulfillment_order is not None
    items: list[Any] = [
        (line.dr_item_id, line.order_line.quantity) for line in fulfillment_order.lines.select_related("order_line")
    ]
    warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=items)


def _captured(order: Order) -> bool:
    """Every unit captured, and DR's captured amount recorded on the order."""
    lines = OrderLine.objects.filter(order=order)
    return order.captured_amount > 0 and all(line.captured == line.quantity for line in lines)
