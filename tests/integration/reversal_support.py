"""What the reversal flows share: people with their roles and API tokens, an order shipped and captured
through the sandbox, and the comparisons of our records with DR's (the sandbox's tables)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from commerce.models import Order, Refund
from digitalriver.models import ApiCall
from fulfillment.models import FulfillmentOrder
from sandbox.models import Order as SandboxOrder
from sandbox.models import Refund as SandboxRefund
from sandbox.services.control import control_update
from sandbox.services.orders import Line, order_place
from sandbox.services.warehouse import warehouse_ship
from tests.conftest import Flow, restore_roles, token_client

#: DR's test cards (digitalriver-api.md section 9).
REFUND_FAILS = "4000 0000 0000 4111"
REFUND_NEEDS_INFORMATION = "4556 6025 6424 0839"


def person(username: str, *roles: str) -> APIClient:
    """An API client calling with the token of a user in the named role groups."""
    groups = restore_roles()
    user = User.objects.create_user(username, password="secret-pass-123")
    user.groups.add(*(groups[role] for role in roles))
    return token_client(user)


def bank_answers_at_once() -> None:
    """The sandbox's bank answers a refund on the next delivery round instead of after 3 s."""
    control_update({"refund_delay_seconds": 0})


def place(flow: Flow, *lines: tuple[str, int], card: str = "") -> Order:
    """The storefront places an accepted order; the app mirrors it (and makes its fulfillment order)."""
    extra = {"card": card} if card else {}
    placed = order_place(lines=[Line(sku_id=sku, quantity=quantity) for sku, quantity in lines], **extra)
    flow.settle()
    return Order.objects.get(dr_order_id=placed.dr_id)


def ship(flow: Flow, order: Order, sku_id: str, quantity: int) -> None:
    """DR's warehouse ships units of a DR-coordinated line; the app captures them."""
    fulfillment_order = FulfillmentOrder.objects.get(order=order, created_by_us=True)
    fo_line = fulfillment_order.lines.get(order_line__dr_sku_id=sku_id)
    warehouse_ship(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id,
        items=[(fo_line.dr_item_id, quantity)],
        tracking_company="UPS",
        tracking_number=f"1Z{order.dr_order_id}{quantity}",
    )
    flow.settle()


def item_id(order: Order, sku_id: str) -> str:
    return order.lines.get(dr_sku_id=sku_id).dr_item_id


def fresh(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def at_dr(order: Order) -> SandboxOrder:
    return SandboxOrder.objects.get(dr_id=order.dr_order_id)


def refunds_at_dr(order: Order) -> list[SandboxRefund]:
    return list(SandboxRefund.objects.filter(order__dr_id=order.dr_order_id).order_by("id"))


def posts(path: str) -> int:
    """How many times the app called ``POST <path>`` at DR (the call log)."""
    return ApiCall.objects.filter(method="POST", path=path).count()


def assert_money_agrees_with_dr(order: Order) -> None:
    """Our order's captured and refunded amounts are DR's, and every refund DR holds is one of ours."""
    order, dr = fresh(order), at_dr(order)
    assert (order.captured_amount, order.refunded_amount) == (dr.captured_amount, dr.refunded_amount)
    ours = dict(Refund.objects.filter(order=order).values_list("dr_refund_id", "state"))
    theirs = {refund.dr_id: refund.state for refund in refunds_at_dr(order)}
    assert ours == theirs
    succeeded = Refund.objects.filter(order=order, state=Refund.State.SUCCEEDED)
    assert sum((refund.refunded_amount for refund in succeeded), Decimal("0")) == dr.refunded_amount
    assert sum((line.refunded_amount for line in order.lines.all()), Decimal("0")) <= order.refunded_amount
