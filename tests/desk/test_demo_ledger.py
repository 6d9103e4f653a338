"""The demo, seeded against a live server, tells one story everywhere: for every demo order, our
order's amounts equal DR's (the sandbox's), each line's ledger in `GET /api/orders/<id>/` equals the
model's and what the order page's lines table shows, and no line has refunded more than it captured
or returned more than it fulfilled."""

import re
import time
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User

from commerce.models import AttentionItem, Document, Order, Refund
from sandbox.demo import demo_seed
from sandbox.models import Order as SandboxOrder
from sandbox.services.control import control_update
from tests.conftest import restore_roles

pytestmark = pytest.mark.django_db(transaction=True)

LEDGER = (
    "quantity",
    "pending",
    "backordered",
    "shipped",
    "fulfilled",
    "captured",
    "capture_failed",
    "cancel_requested",
    "cancelled",
    "open_quantity",
    "return_requested",
    "returned",
    "captured_amount",
    "refunded_amount",
)


class LinesTable(HTMLParser):
    """The text of each cell of each row of the order page's ``#order-lines`` table, by DR item id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._in_table = False
        self._item = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "order-lines":
            self._in_table = True
        elif self._in_table and tag == "tr" and attrs.get("data-item"):
            self._item = attrs["data-item"]
            self.rows[self._item] = []
        elif self._item and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[self._item].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._item = ""
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page_ledger(cells: list[str]) -> dict:
    """A row of the lines table read back into the ledger's names (the columns of change_form.html)."""
    ordered, pending, backordered, shipped, fulfilled, cancel_requested, cancelled, still_open, returned, money = cells[
        1:11
    ]
    fulfilled = re.fullmatch(r"(\d+)(?: (\d+) captured| (\d+) capture failed)?", fulfilled)
    returned = re.fullmatch(r"(\d+)(?: (\d+) on the way back)?", returned)
    money = re.search(r"captured (\d+\.\d\d)(?: refunded (\d+\.\d\d))?", money)
    assert fulfilled and returned and money, cells
    return {
        "quantity": int(ordered),
        "pending": int(pending),
        "backordered": int(backordered),
        "shipped": int(shipped),
        "fulfilled": int(fulfilled[1]),
        "captured": int(fulfilled[2] or 0),
        "capture_failed": int(fulfilled[3] or 0),
        "cancel_requested": int(cancel_requested),
        "cancelled": int(cancelled),
        "open_quantity": int(still_open),
        "returned": int(returned[1]),
        "return_requested": int(returned[2] or 0),
        "captured_amount": Decimal(money[1]),
        "refunded_amount": Decimal(money[2] or "0.00"),
    }


def settle_demo(flow, timeout: float = 30.0) -> None:
    """Deliver until every refund has its bank answer and every completed one its credit memo."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flow.settle()
        open_refunds = Refund.objects.filter(state__in=Refund.OPEN_STATES).exists()
        memos = Document.objects.filter(purpose=Document.Purpose.CREDIT_MEMO).count()
        if not open_refunds and memos >= Refund.objects.filter(state=Refund.State.SUCCEEDED).count():
            return
        time.sleep(0.05)
    raise AssertionError("the demo's refunds did not settle")


@pytest.fixture
def seeded_demo(flow):
    restore_roles()
    control_update({"refund_delay_seconds": 0})
    # The server's delivery loop is this thread: each wait of the demo delivers and sends first.
    demo_seed(say=lambda _: None, timeout=30, tick=flow.settle)
    settle_demo(flow)


def test_every_demo_order_tells_the_same_ledger_on_the_page_in_the_api_and_at_dr(seeded_demo, client):
    client.force_login(User.objects.create_superuser("agent", "agent@example.com", "agent-pass-1"))
    orders = list(Order.objects.filter(lines__dr_sku_id__startswith="DEMO-").distinct().prefetch_related("lines"))
    assert len(orders) == 7

    for order in orders:
        dr = SandboxOrder.objects.get(dr_id=order.dr_order_id)
        dr_view = dr.as_dr()
        assert (order.captured_amount, order.refunded_amount) == (
            Decimal(str(dr_view["capturedAmount"])),
            Decimal(str(dr_view["refundedAmount"])),
        ), order.dr_order_id
        assert order.refunded_amount <= order.captured_amount

        api = client.get(f"/api/orders/{order.dr_order_id}/")
        assert api.status_code == 200
        api_lines = {line["dr_item_id"]: line for line in api.json()["lines"]}
        page = client.get(f"/admin/commerce/order/{order.pk}/change/")
        assert page.status_code == 200
        table = LinesTable()
        table.feed(page.content.decode())
        dr_items = {item.dr_id: item for item in dr.items.all()}

        assert set(api_lines) == set(table.rows) == {line.dr_item_id for line in order.lines.all()}
        for line in order.lines.all():
            model = {name: getattr(line, name) for name in LEDGER}
            from_api = {
                name: Decimal(api_lines[line.dr_item_id][name])
                if name.endswith("_amount")
                else api_lines[line.dr_item_id][name]
                for name in LEDGER
            }
            assert from_api == model, (order.dr_order_id, line.label)
            assert page_ledger(table.rows[line.dr_item_id]) == model, (order.dr_order_id, line.label)
            assert line.refunded_amount <= line.captured_amount
            assert line.returned <= line.fulfilled
            item = dr_items[line.dr_item_id]
            assert (line.fulfilled, line.cancelled, line.returned) == (
                item.fulfilled_quantity,
                item.cancelled_quantity,
                item.returned_quantity,
            ), (order.dr_order_id, line.label)

    # The three reversal stories are there to be read.
    returned = Order.objects.get(email="katherine@example.com")
    refund = returned.refunds.get()
    assert (refund.state, refund.for_return) == (Refund.State.SUCCEEDED, returned.returns.get().dr_return_id)
    assert returned.lines.get().refunded_amount == refund.refunded_amount > 0
    assert returned.documents.filter(purpose=Document.Purpose.CREDIT_MEMO).exists()
    failed = Order.objects.get(email="barbara@example.com")
    assert failed.refunds.get().state == Refund.State.FAILED
    assert AttentionItem.objects.filter(order=failed, kind="refund_failed", cleared_at__isnull=True).exists()
    disputed = Order.objects.get(email="donald@example.com")
    assert (disputed.state, disputed.dispute_open) == (Order.State.DISPUTE, True)


def test_a_second_demo_run_does_nothing(seeded_demo):
    said = []
    counts = (Order.objects.count(), Refund.objects.count(), SandboxOrder.objects.count())

    demo_seed(say=said.append, timeout=5)

    assert said == ["demo: already seeded"]
    assert (Order.objects.count(), Refund.objects.count(), SandboxOrder.objects.count()) == counts
