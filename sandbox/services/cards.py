"""DR's test cards (developer-resources/testing-scenarios.md) and what the sandbox does with them.

A sandbox order is paid with one of these numbers (the page's card menu, `order_place(card=…)`);
its source shows only the last four digits, and those decide the outcomes below.
"""

from ..models import Order

DEFAULT_CARD = "4111111111111111"
CAPTURE_FAILS = "capture_fails"
REFUND_FAILS = "refund_fails"
REFUND_PENDING_THEN_FAILS = "refund_pending_then_fails"
SUCCEEDS = "succeeds"

#: number -> (what happens, what the page calls it)
TEST_CARDS: dict[str, tuple[str, str]] = {
    DEFAULT_CARD: (SUCCEEDS, "everything succeeds"),
    "4000000000004103": (CAPTURE_FAILS, "the capture fails"),
    "4000000000004111": (REFUND_FAILS, "refunds fail"),
    # DR: "the Refund is created in a pending state. After a delay, the Refund state updates to
    # failed". The sandbox passes through pending_information on the way (with tokenInformation), so
    # a client's handling of that state is exercised too.
    "4556602564240839": (REFUND_PENDING_THEN_FAILS, "refunds wait for bank details, then fail"),
}
_BY_LAST_FOUR = {number[-4:]: outcome for number, (outcome, _) in TEST_CARDS.items()}


def card_number(raw: str) -> str:
    number = "".join(raw.split()) or DEFAULT_CARD
    if number not in TEST_CARDS:
        raise ValueError(f"{raw!r} is not one of DR's test cards: {', '.join(TEST_CARDS)}")
    return number


def card_outcome(order: Order) -> str:
    source = order.sources.first()
    last_four = ((source.data if source else {}).get("creditCard") or {}).get("lastFourDigits", "")
    return _BY_LAST_FOUR.get(last_four, SUCCEEDS)
