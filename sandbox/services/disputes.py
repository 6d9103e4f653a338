"""Disputes and chargebacks, played from the page as the customer's bank would.

Source: order-management/returns-and-refunds-1/disputes-and-chargebacks.md. A dispute moves the order
to `dispute` (`order.dispute`, `stateTransitions.dispute`) and locks fulfillments, refunds and
returns; resolving it puts the order back in its previous state (`order.dispute.resolved`). A
chargeback (`order.chargeback`, whose payload DR does not show: the sandbox sends the order) takes
money back and lowers `availableToRefundAmount`.
"""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ..models import Order
from ..timefmt import dr_time
from .lifecycle import OrderError, emit_order

DISPUTABLE = (
    Order.State.ACCEPTED,
    Order.State.FULFILLED,
    Order.State.COMPLETE,
    Order.State.RETURNED,
)


def _locked(order_id: str) -> Order:
    order = Order.objects.select_for_update().filter(dr_id=order_id).first()
    if order is None:
        raise OrderError(f"no order {order_id}")
    return order


def dispute_open(*, order_id: str) -> Order:
    with transaction.atomic():
        order = _locked(order_id)
        if order.state not in DISPUTABLE:
            raise OrderError(f"order {order_id} is {order.state}: only a paid order can be disputed")
        now = timezone.now()
        previous = {"state": order.state}
        order.state_before_dispute = order.state
        order.state = Order.State.DISPUTE
        order.state_transitions = {**order.state_transitions, "dispute": dr_time(now)}
        order.updated_time = now
        order.save()
        emit_order(order, "order.dispute", previous)
        return order


def dispute_resolve(*, order_id: str) -> Order:
    with transaction.atomic():
        order = _locked(order_id)
        if order.state != Order.State.DISPUTE:
            raise OrderError(f"order {order_id} is not in dispute")
        order.state = order.state_before_dispute or Order.State.ACCEPTED
        order.state_before_dispute = ""
        order.updated_time = timezone.now()
        order.save()
        emit_order(order, "order.dispute.resolved", {"state": Order.State.DISPUTE})
        return order


def chargeback(*, order_id: str, amount: Decimal | None = None) -> Order:
    """The bank takes `amount` back (all that is still refundable by default)."""
    with transaction.atomic():
        order = _locked(order_id)
        available = order.available_to_refund
        amount = available if amount is None else amount
        if amount <= 0 or amount > available:
            raise OrderError(f"a chargeback of {amount} is more than the {available} still refundable")
        previous = {"availableToRefundAmount": float(available)}
        order.chargeback_amount += amount
        order.updated_time = timezone.now()
        order.save()
        emit_order(order, "order.chargeback", previous)
        return order
