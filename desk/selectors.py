"""Reads for customer service: the order page (every section in a fixed number of queries, the
flags explained, each cancellation request's progress, and the start of the timeline,
``order_timeline``) and the orders API (``orders_list``, ``order_detail_get``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case, F, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.formats import date_format

from commerce.models import ATTENTION_FLAGS, FLAGS_BY_FIELD, Charge, ChargeOperation, Order, OrderLine, Refund, units_of
from fulfillment.models import (
    TRACKABLE_SCHEMES,
    CancellationRequest,
    DrFulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Return,
    ReturnLine,
    Shipment,
    ShipmentItem,
)

from .refund_page import REFUND_LINES
from .timeline import (
    CANCELLATION_LINES,
    ERROR,
    REQUESTED_BY_GROUPS,
    WARNING,
    TimelineEntry,
    accepted_of_asked,
    line_names,
    order_timeline,
    requester,
    units_of_item,
)
from .timeline_technical import links_the_viewer_may_open

# Each return with its lines and the fulfillment order it goes back to (the API and the order page).
RETURNS = Prefetch(
    "returns",
    queryset=Return.objects.select_related("fulfillment_order").prefetch_related(
        Prefetch("lines", queryset=ReturnLine.objects.select_related("order_line").order_by("id"))
    ),
)

LINKABLE_TRACKING_URL = Case(
    When(
        Q.create([("tracking_url__startswith", scheme) for scheme in TRACKABLE_SCHEMES], connector=Q.OR),
        then=F("tracking_url"),
    ),
    default=Value(""),
)


@dataclass(frozen=True)
class Flag:
    """A reason the order needs a person, in the words an agent would use with the customer."""

    title: str
    explanation: str
    tone: str
    kind: str = ""
    what_to_do: str = ""
    since: datetime | None = None


DONE, WAITING, REFUSED, TODO = "done", "waiting", "refused", "todo"


@dataclass(frozen=True)
class ProgressStep:
    label: str
    status: str  # DONE, WAITING, REFUSED, or TODO


@dataclass(frozen=True)
class CancellationProgress:
    """A cancellation request with its steps (requested → answered → payment released) and who asked."""

    request: CancellationRequest
    steps: tuple[ProgressStep, ...]
    requester: str


@dataclass(frozen=True)
class OrderPage:
    lines: list[OrderLine]
    fulfillment_orders: list[FulfillmentOrder]
    shipments: list[Shipment]
    dr_fulfillments: list[tuple[DrFulfillment, list[str]]]  # each record with its items in words
    charges: list[Charge]
    cancellations: list[CancellationProgress]
    flags: list[Flag]
    timeline: list[TimelineEntry]
    timeline_truncated: bool


def order_page(
    *,
    order: Order,
    timeline_limit: int,
    technical: bool = False,
    viewer: AbstractBaseUser | AnonymousUser | None = None,
) -> OrderPage:
    """Everything the order page shows, in the same number of queries however big the order is: the
    timeline tells the business story unless ``technical``, with only the links ``viewer`` may open."""
    lines = list(order.lines.all())
    names = line_names(lines)
    fulfillment_orders = list(
        order.fulfillment_orders.prefetch_related(
            Prefetch("lines", queryset=FulfillmentOrderLine.objects.select_related("order_line"))
        )
    )
    shipments: list[Shipment] = list(
        order.shipments.annotate(tracking_link=LINKABLE_TRACKING_URL).prefetch_related(
            Prefetch("items", queryset=ShipmentItem.objects.select_related("order_line").order_by("id"))
        )
    )
    charges = list(order.charges.prefetch_related("operations"))
    cancellations = [
        cancellation_progress(request)
        for request in order.cancellation_requests.select_related("requested_by").prefetch_related(
            CANCELLATION_LINES, REQUESTED_BY_GROUPS
        )
    ]
    # One more entry than shown tells whether there is more to show.
    timeline = order_timeline(order=order, limit=timeline_limit + 1, lines=lines, technical=technical)
    if viewer is not None:
        timeline = links_the_viewer_may_open(timeline, user=viewer)
    return OrderPage(
        lines=lines,
        fulfillment_orders=fulfillment_orders,
        shipments=shipments,
        dr_fulfillments=[
            (record, recorded_items(record, names))
            for record in order.dr_fulfillments.annotate(tracking_link=LINKABLE_TRACKING_URL)
        ],
        charges=charges,
        cancellations=cancellations,
        flags=order_flags(order=order, lines=lines, fulfillment_orders=fulfillment_orders, charges=charges),
        timeline=timeline[:timeline_limit],
        timeline_truncated=len(timeline) > timeline_limit,
    )


def recorded_items(record: DrFulfillment, names: dict[str, str]) -> list[str]:
    """'Captured 2 units of Widget' for each item of a fulfillment DR recorded."""
    phrases = []
    for item in record.items:
        if item.get("quantity"):
            phrases.append(f"Captured {units_of_item(item, 'quantity', 'itemId', names)}")
        if item.get("cancelQuantity"):
            phrases.append(f"Cancelled {units_of_item(item, 'cancelQuantity', 'itemId', names)}")
    return phrases


# --- flags ----------------------------------------------------------------------------------------


def order_flags(
    *, order: Order, lines: list[OrderLine], fulfillment_orders: list[FulfillmentOrder], charges: list[Charge]
) -> list[Flag]:
    """Each raised flag explained; takes the rows the page already loaded, so it costs no query."""
    flags = []
    if order.capture_failed:
        reasons = sorted(
            {
                operation.failure_message or operation.failure_code
                for charge in charges
                for operation in charge.operations.all()
                if operation.kind == ChargeOperation.Kind.CAPTURE
                and operation.state == "failed"
                and (operation.failure_message or operation.failure_code)
            }
        )
        said = f" DR said: {'; '.join(reasons)}." if reasons else ""
        flags.append(
            Flag(
                "Capture failed",
                "Digital River could not take the payment for units that shipped."
                f"{said} The goods are on their way unpaid.",
                ERROR,
            )
        )
    if order.cancellation_rejected:
        flags.append(
            Flag(
                "Cancellation rejected",
                "Digital River or the warehouse refused to cancel some units, usually because they already "
                "shipped. Check the lines below before telling the customer what will arrive.",
                ERROR,
            )
        )
    if order.backordered:
        waits = [
            f"{units_of(line.backordered, line.order_line.name or line.inventory_item_id)} expected {_expected(line)}"
            for fulfillment_order in fulfillment_orders
            for line in fulfillment_order.lines.all()
            if line.backordered
        ]
        said = "; ".join(waits) + ". " if waits else ""
        flags.append(
            Flag(
                "Backordered",
                f"{said}The warehouse ships the rest as usual; tell the customer these units come later.",
                WARNING,
            )
        )
    if order.unknown_sku:
        unknown = ", ".join(line.dr_sku_id for line in lines if line.sku_id is None)
        flags.append(
            Flag(
                "Unknown SKU",
                f"Not in our catalog: {unknown}. These lines are not fulfilled by our flow until a merchandiser "
                "adds the SKU.",
                WARNING,
            )
        )
    return _with_attention_items(order, flags)


# The kinds whose explanation above is written from the page's rows; the others say what the
# event that raised them said.
EXPLAINED_FROM_ROWS = {
    "Capture failed": "capture_failed",
    "Cancellation rejected": "cancellation_rejected",
    "Backordered": "backordered",
    "Unknown SKU": "unknown_sku",
}


def _with_attention_items(order: Order, flags: list[Flag]) -> list[Flag]:
    """Each raised flag with its open item: since when, what to do, and the kind to acknowledge."""
    items = {item.kind: item for item in order.attention_items.filter(cleared_at__isnull=True)}
    shown = []
    for flag in flags:
        kind = EXPLAINED_FROM_ROWS[flag.title]
        item = items.get(kind)
        shown.append(
            replace(
                flag,
                kind=kind,
                since=item.raised_at if item else None,
                what_to_do="" if kind in ("backordered", "unknown_sku") else FLAGS_BY_FIELD[kind].what_to_do,
            )
        )
    for attention in ATTENTION_FLAGS:
        if attention.field in EXPLAINED_FROM_ROWS.values() or not getattr(order, attention.field):
            continue
        item = items.get(attention.field)
        shown.append(
            Flag(
                attention.label,
                (item.reason if item else "") or attention.meaning,
                ERROR if attention.severity == "error" else WARNING,
                kind=attention.field,
                what_to_do=attention.what_to_do,
                since=item.raised_at if item else None,
            )
        )
    return shown


def _expected(line: FulfillmentOrderLine) -> str:
    if line.available_time is None:
        return "on a date the warehouse has not given yet"
    return date_format(timezone.localtime(line.available_time), "DATE_FORMAT")


# --- cancellation requests ----------------------------------------------------------------------


def cancellation_progress(request: CancellationRequest) -> CancellationProgress:
    State = CancellationRequest.State
    state = request.state
    released = ProgressStep("Payment released", DONE if state == State.RELEASED else WAITING)
    if request.route != CancellationRequest.Route.FULFILLMENT_CANCELLATION:
        if state == State.FAILED:
            released = ProgressStep("DR refused", REFUSED)
        return CancellationProgress(request, (ProgressStep("Requested", DONE), released), requester(request))
    accepted, asked = accepted_of_asked(request)
    steps: tuple[ProgressStep, ...]
    if state == State.FAILED:
        steps = (ProgressStep("Requested", DONE), ProgressStep("DR refused", REFUSED))
    elif state in (State.REQUESTED, State.SUBMITTED):
        steps = (
            ProgressStep("Requested", DONE),
            ProgressStep("Sent to DR", DONE if state == State.SUBMITTED else WAITING),
            ProgressStep("Warehouse answer", WAITING if state == State.SUBMITTED else TODO),
            ProgressStep("Payment released", TODO),
        )
    elif state == State.REJECTED:
        steps = (
            ProgressStep("Requested", DONE),
            ProgressStep("Sent to DR", DONE),
            ProgressStep("Warehouse rejected", REFUSED),
        )
    else:
        answer = "Warehouse accepted" if accepted >= asked else f"Warehouse accepted {accepted} of {asked}"
        steps = (
            ProgressStep("Requested", DONE),
            ProgressStep("Sent to DR", DONE),
            ProgressStep(answer, DONE),
            released,
        )
    return CancellationProgress(request, steps, requester(request))


# --- the orders API -------------------------------------------------------------------------------


SEARCH_HELP = (
    "Part of the DR order id, the upstream id, the customer's email or name; a SKU; or a tracking number "
    "(whole or part)."
)


Orders = TypeVar("Orders", bound=QuerySet[Order])


def orders_matching(orders: Orders, q: str) -> Orders:
    """The orders an agent means by what they typed: part of the DR order id or upstream id, part of
    the customer's email or name, a SKU of one of its lines (exact), or part of a tracking number of
    its shipments or of DR's fulfillments. Several words must each match (\"jane example.com\").

    Each branch is answered by its own index (trigram indexes on PostgreSQL, see commerce and
    fulfillment migrations 0003), so a search stays fast however many orders there are.
    """
    for term in q.split():
        orders = orders.filter(pk__in=_order_ids_matching(term))
    return orders


def _order_ids_matching(term: str) -> QuerySet[Order]:
    own = Order.objects.filter(
        Q(dr_order_id__contains=term)
        | Q(upstream_id__icontains=term)
        | Q(email__icontains=term)
        | Q(customer_name__icontains=term)
    ).order_by()
    by_sku = OrderLine.objects.filter(dr_sku_id=term).order_by().values("order_id")
    shipped = Shipment.objects.filter(tracking_number__icontains=term).order_by().values("order_id")
    recorded = DrFulfillment.objects.filter(tracking_number__icontains=term).order_by().values("order_id")
    # One union of index scans: PostgreSQL cannot use the indexes for an OR across tables.
    return own.values("pk").union(by_sku, shipped, recorded, all=True)  # type: ignore[return-value]


def orders_list(
    *,
    state: str | None = None,
    upstream_id: str | None = None,
    email: str | None = None,
    q: str | None = None,
) -> QuerySet[Order]:
    """Orders newest first (by DR's creation time; an order not yet fetched in full comes last)."""
    orders = Order.objects.order_by(F("dr_created_at").desc(nulls_last=True), "-id")
    if q:
        orders = orders_matching(orders, q)
    if state:
        orders = orders.filter(state=state)
    if upstream_id:
        orders = orders.filter(upstream_id=upstream_id)
    if email:
        # Addresses are matched the way mail servers treat them in practice: case does not matter.
        orders = orders.filter(email__iexact=email)
    return orders


def order_detail_get(*, dr_order_id: str) -> Order | None:
    """One order with its lines, fulfillment orders, shipments and charges, or None."""
    return (
        Order.objects.filter(dr_order_id=dr_order_id)
        .prefetch_related(
            "lines",
            Prefetch(
                "fulfillment_orders",
                queryset=FulfillmentOrder.objects.prefetch_related(
                    Prefetch("lines", queryset=FulfillmentOrderLine.objects.select_related("order_line"))
                ),
            ),
            Prefetch(
                "shipments",
                queryset=Shipment.objects.select_related("fulfillment_order").prefetch_related(
                    Prefetch("items", queryset=ShipmentItem.objects.select_related("order_line").order_by("id"))
                ),
            ),
            Prefetch("charges", queryset=Charge.objects.prefetch_related("operations")),
            "attention_items",
            Prefetch("refunds", queryset=Refund.objects.select_related("requested_by").prefetch_related(REFUND_LINES)),
            RETURNS,
            "documents",
            "chargebacks",
        )
        .first()
    )
