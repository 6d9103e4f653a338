"""DR's order lifecycle: states, stateTransitions and the order.* events."""

from django.utils import timezone

from ..models import Charge, Order, OrderItem
from ..timefmt import dr_time
from ..types import JSONObject
from .events import event_emit


class OrderError(ValueError):
    """A request the order's state or contents forbid; the message names the problem."""


# DR's stateTransitions keys are the state names themselves, snake_case (the spec's
# OrderStateTransitions; the order examples of DR's pages, e.g. "pending_payment").
TRANSITION_KEYS = {
    "pending_payment": "pending_payment",
    "in_review": "in_review",
    "accepted": "accepted",
    "blocked": "blocked",
    "fulfilled": "fulfilled",
    "complete": "complete",
    "cancelled": "cancelled",
    "returned": "returned",
}
STATE_EVENTS = {
    "in_review": "order.review_opened",
    "accepted": "order.accepted",
    "blocked": "order.blocked",
    "fulfilled": "order.fulfilled",
    "complete": "order.complete",
    "cancelled": "order.cancelled",
    # The lifecycle page names order.refunded as the event of `returned`.
    "returned": "order.refunded",
}
ALLOWED_MOVES = {
    "pending_payment": {"in_review", "accepted", "cancelled"},
    "in_review": {"accepted", "blocked", "cancelled"},
    # A blocked order's units can still be cancelled through POST /fulfillments (releasing them).
    "blocked": {"cancelled"},
    "accepted": {"fulfilled", "cancelled"},
    "fulfilled": {"complete", "returned"},
    "complete": {"returned"},
}


def order_move(*, order: Order, state: str) -> Order:
    """Move an order to `state`, stamping stateTransitions and emitting the state's event.

    Local bookkeeping only: accepting does not create fulfillment orders here (the storefront does).
    """
    if state == order.state:
        return order
    if state not in ALLOWED_MOVES.get(order.state, set()):
        raise OrderError(f"order {order.dr_id} cannot go from {order.state} to {state}")
    previous = {"state": order.state}
    now = timezone.now()
    order.state = state
    order.state_transitions = {**order.state_transitions, TRANSITION_KEYS[state]: dr_time(now)}
    order.updated_time = now
    if state == "in_review":
        order.fraud_state = "review_opened"
    elif state == "accepted":
        order.fraud_state = "passed"
    elif state == "blocked":
        order.fraud_state = "blocked"
    order.save()
    charge = order.charges.first()
    assert charge is not None, "every sandbox order is placed with its charge"
    if state in ("in_review", "accepted") and charge.state == Charge.State.PENDING:
        charge.state = Charge.State.CAPTURABLE
        charge.updated_time = now
        charge.save(update_fields=["state", "updated_time"])
    if state == "accepted":
        order.items.filter(state=OrderItem.State.CREATED).update(state=OrderItem.State.PAID)
    if state == "blocked":
        order.items.update(state=OrderItem.State.BLOCKED)
        charge.state = Charge.State.CANCELLED
        charge.save(update_fields=["state"])
    emit_order(order, STATE_EVENTS[state], previous)
    return order


def emit_order(order: Order, event_type: str, previous: JSONObject) -> None:
    order = Order.objects.get(pk=order.pk)
    event_emit(type=event_type, obj=order.as_dr(), previous=previous, order_id=order.dr_id)
