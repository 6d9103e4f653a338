"""What one line of a cancellation would do, in the words of its confirmation: the money it
releases, what happens to the goods, and the DR call behind it (for operations)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from catalog.models import Sku
from commerce.models import Order, OrderLine, units_of

from .models import CancellationRequest

Route = CancellationRequest.Route
# Before DR accepts an order, its units are cancelled and released at once (nothing can ship).
NOT_ACCEPTED = (Order.State.PENDING_PAYMENT, Order.State.IN_REVIEW, Order.State.BLOCKED)


@dataclass(frozen=True)
class PlannedStep:
    """One line of a confirmation: the money, what happens to the goods, and the DR call behind it."""

    line: OrderLine
    quantity: int
    what: str  # "Ask the warehouse to cancel 1 unit of Desk lamp"
    dr_call: str  # "POST /fulfillment-cancellations; …"
    money: Decimal = Decimal(0)  # what the units cost the customer, tax included
    effect: str = ""  # "Release 21.59 USD for 1 x Desk lamp; the warehouse may still ship it if it already left"


def cancellation_step(order: Order, line: OrderLine, quantity: int, route: str) -> PlannedStep:
    """Which DR call cancelling the line's units causes, and the money it releases, in words."""
    goods, money = units_of(quantity, line.label), line.price_of(quantity)
    release = f"Release {money} {order.currency} for {quantity} \N{MULTIPLICATION SIGN} {line.label}"
    it, they = ("it", "it") if quantity == 1 else ("them", "they")
    if route == Route.FULFILLMENT and order.state in NOT_ACCEPTED:
        return PlannedStep(
            line,
            quantity,
            f"Release the payment of {goods}",
            "POST /fulfillments with cancelQuantity: the order is not accepted yet, so DR cancels the units "
            "and releases their payment at once.",
            money,
            f"{release} now; nothing ships",
        )
    if route == Route.FULFILLMENT_CANCELLATION:
        then = (
            "when the warehouse accepts, DR releases the payment itself (orchestrated line)."
            if line.fulfillment_model == Sku.FulfillmentModel.ORCHESTRATED
            else "when the warehouse accepts, we release the payment of the accepted units "
            "(POST /fulfillments with cancelQuantity)."
        )
        return PlannedStep(
            line,
            quantity,
            f"Ask the warehouse to cancel {goods}",
            f"POST /fulfillment-cancellations; units it ships in the meantime stay shipped; {then}",
            money,
            f"{release} once the warehouse accepts; the warehouse may still ship {it} if {they} already left",
        )
    return PlannedStep(
        line,
        quantity,
        f"Release the payment of {goods}",
        "POST /fulfillments with cancelQuantity: we fulfil this line ourselves, so make sure it is "
        "not shipped or delivered.",
        money,
        f"{release} now; make sure our logistics partner has not shipped {it}",
    )
