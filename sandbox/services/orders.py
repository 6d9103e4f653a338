"""The storefront: placing test orders and moving them through review and acceptance."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from ..ids import numeric_id, prefixed_id
from ..models import Charge, InventoryItem, Order, OrderItem, Sku, Source
from ..timefmt import cents, dr_time
from ..types import JSONObject
from .cards import DEFAULT_CARD, card_number
from .lifecycle import OrderError, emit_order, order_move
from .warehouse import fulfillment_order_create_managed

# The storefront's prices: DR keeps no prices on SKUs (they come with each checkout), so the sandbox
# uses a SKU's `metadata.sandboxPrice` when present and this otherwise.
DEFAULT_UNIT_PRICE = Decimal("19.99")
TAX_RATE = Decimal("0.08")
SHIPPING_AMOUNT = Decimal("5.00")
PLACEABLE_STATES = (Order.State.PENDING_PAYMENT, Order.State.IN_REVIEW, Order.State.ACCEPTED)

DEFAULT_SHIP_TO = {
    "name": "Ada Lovelace",
    "phone": "952-111-1111",
    "email": "customer@example.com",
    "address": {
        "line1": "10380 Bren Road W",
        "line2": "",
        "city": "Minnetonka",
        "postalCode": "55343",
        "state": "MN",
        "country": "US",
    },
}


@dataclass(frozen=True)
class Line:
    sku_id: str
    quantity: int
    unit_price: Decimal | None = None


def parse_lines(text: str) -> list[Line]:
    """`SKU:QTY[:PRICE]`, separated by spaces, commas or new lines."""
    lines = []
    for token in text.replace(",", " ").split():
        parts = token.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ValueError(f"{token!r} is not SKU:QTY or SKU:QTY:PRICE")
        try:
            price = Decimal(parts[2]) if len(parts) == 3 else None
        except InvalidOperation:
            raise ValueError(f"{parts[2]!r} is not a price") from None
        lines.append(Line(parts[0], int(parts[1]), price))
    return lines


def order_place(
    *,
    lines: list[Line],
    state: str = Order.State.ACCEPTED,
    email: str = "customer@example.com",
    currency: str = "USD",
    upstream_id: str = "",
    ship_to: JSONObject | None = None,
    service_level: str = "SG",
    locale: str = "en_US",
    card: str = DEFAULT_CARD,
) -> Order:
    """Place an order from pushed SKUs, as a shopper completing a checkout would.

    The order starts in pending_payment and is moved to `state` (in_review or accepted) with the
    events of each step; accepting it creates the fulfillment order of its orchestrated lines.
    """
    if state not in PLACEABLE_STATES:
        raise OrderError(f"state must be one of {', '.join(PLACEABLE_STATES)}, not {state!r}")
    if not lines:
        raise OrderError("an order needs at least one line")
    try:
        card = card_number(card)
    except ValueError as exc:
        raise OrderError(str(exc)) from None
    with transaction.atomic():
        priced = [_price(line) for line in lines]
        now = timezone.now()
        subtotal = sum((amount for _, _, amount, _ in priced), Decimal("0"))
        shipping_tax = cents(SHIPPING_AMOUNT * TAX_RATE)
        total_tax = sum((tax for _, _, _, tax in priced), Decimal("0")) + shipping_tax
        total = subtotal + total_tax + SHIPPING_AMOUNT
        address = ship_to or {**DEFAULT_SHIP_TO, "email": email}
        order = Order.objects.create(
            dr_id=_unique_id(Order),
            upstream_id=upstream_id,
            checkout_id=prefixed_id("chk"),
            email=email,
            locale=locale,
            currency=currency,
            state=Order.State.PENDING_PAYMENT,
            ship_to=address,
            bill_to=address,
            shipping_choice={
                "id": numeric_id(),
                "amount": float(SHIPPING_AMOUNT),
                "taxAmount": float(shipping_tax),
                "description": "Standard Ground",
                "serviceLevel": service_level,
                "shippingTerms": "DDP",
            },
            subtotal=subtotal,
            total_tax=total_tax,
            total_shipping=SHIPPING_AMOUNT,
            total_amount=total,
            state_transitions={"pending_payment": dr_time(now)},
            created_time=now,
            updated_time=now,
        )
        for sku, quantity, amount, tax in priced:
            OrderItem.objects.create(
                order=order,
                dr_id=_unique_id(OrderItem),
                sku_id=sku.dr_id,
                product_details={
                    "id": sku.dr_id,
                    "name": sku.name,
                    "description": sku.data.get("description", ""),
                    "image": sku.data.get("image", ""),
                    "taxCode": sku.data.get("taxCode", ""),
                    "skuGroupId": sku.data.get("skuGroupId", ""),
                    "physical": sku.physical,
                    "managedFulfillment": sku.data.get("managedFulfillment"),
                },
                fulfillment_model=(
                    OrderItem.Model.ORCHESTRATED
                    if sku.managed
                    else OrderItem.Model.DISTRIBUTED
                    if sku.physical
                    else OrderItem.Model.DIGITAL
                ),
                quantity=quantity,
                amount=amount,
                tax_rate=TAX_RATE,
                tax_amount=tax,
            )
        source = Source.objects.create(
            dr_id=prefixed_id("src"),
            order=order,
            amount=total,
            data={
                "type": "creditCard",
                "creditCard": {
                    "brand": "Visa",
                    "lastFourDigits": card[-4:],
                    "expirationMonth": 12,
                    "expirationYear": now.year + 3,
                },
                "owner": {
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "email": email,
                    "address": address.get("address", {}),
                },
            },
        )
        Charge.objects.create(
            dr_id=prefixed_id("chg"),
            order=order,
            source=source,
            currency=currency,
            amount=total,
            state=Charge.State.PENDING,
        )
        if state == Order.State.PENDING_PAYMENT:
            emit_order(order, "order.pending_payment", {})
        elif state == Order.State.ACCEPTED:
            _accept(order)
        else:
            order_move(order=order, state=state)
        return order


def _price(line: Line) -> tuple[Sku, int, Decimal, Decimal]:
    sku = Sku.objects.filter(dr_id=line.sku_id).first()
    if sku is None:
        raise OrderError(f"SKU {line.sku_id!r} was never pushed to the sandbox")
    if not isinstance(line.quantity, int) or line.quantity < 1:
        raise OrderError(f"quantity of {line.sku_id!r} must be a positive integer")
    # Overselling is the inventory item's to allow (a SKU has no allowOversell from 2021-12-13).
    item = InventoryItem.objects.filter(dr_id=sku.dr_id).first() if sku.physical else None
    if sku.physical and not (item is not None and item.data.get("allowOversell")):
        stock = sum(level.available_quantity for level in item.levels.all()) if item else None
        if stock is not None and stock < line.quantity:
            raise OrderError(f"out_of_inventory: only {stock} of {line.sku_id!r} in stock")
    unit = line.unit_price
    if unit is None:
        unit = Decimal(str(sku.data.get("metadata", {}).get("sandboxPrice", DEFAULT_UNIT_PRICE)))
    amount = cents(unit * line.quantity)
    return sku, line.quantity, amount, cents(amount * TAX_RATE)


def _unique_id(model: type[Order | OrderItem]) -> str:
    while True:
        candidate = numeric_id()
        if not model.objects.filter(dr_id=candidate).exists():
            return candidate


def order_release(*, order_id: str) -> Order:
    """The page's "release": payment arrived or the review passed."""
    with transaction.atomic():
        return _accept(_locked(order_id))


def order_review(*, order_id: str) -> Order:
    with transaction.atomic():
        return order_move(order=_locked(order_id), state=Order.State.IN_REVIEW)


def order_block(*, order_id: str) -> Order:
    with transaction.atomic():
        return order_move(order=_locked(order_id), state=Order.State.BLOCKED)


def _accept(order: Order) -> Order:
    order_move(order=order, state=Order.State.ACCEPTED)
    fulfillment_order_create_managed(order=order)
    return order


def _locked(order_id: str) -> Order:
    order = Order.objects.select_for_update().filter(dr_id=order_id).first()
    if order is None:
        raise OrderError(f"no order {order_id}")
    return order
