"""What DR's fulfillment events mean for us, and the instructions they cause.

Handlers call these outside any transaction: a service first reads from DR what it lacks (an order
we have not seen), then writes its changes and the instructions they cause in one transaction.
Every function is idempotent: DR delivers twice, concurrently and out of order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import transaction
from django.db.models import Sum

from catalog.models import Sku
from commerce.attention import attention_follow_locked, attention_raise
from commerce.models import Order, OrderLine, order_subject
from commerce.services import (
    charge_upsert,
    dr_time,
    lock_order,
    order_locked,
    order_upsert,
    order_upsert_telling,
)
from core.db import get_or_create_under_lock, insert_unless_exists
from core.types import JSONObject
from digitalriver.models import Instruction
from digitalriver.services.outbox import instruction_enqueue, instructions_retry_now

from . import notifications
from .cancellations import units_released
from .kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT
from .ledger import ledger_recount
from .models import DrFulfillment, FulfillmentOrder, FulfillmentOrderLine

DISTRIBUTED = Sku.FulfillmentModel.DISTRIBUTED
ORCHESTRATED = Sku.FulfillmentModel.ORCHESTRATED
RELEASED_CODES = frozenset({"item_cancelled", "order_cancelled"})
CAPTURED_CODES = frozenset({"item_fulfilled"})


# --- orders ---------------------------------------------------------------------------------------


@transaction.atomic
def order_mirror(*, data: JSONObject) -> Order:
    """An order.* event: mirror it, and ask DR for a fulfillment order once it is accepted."""
    upserted = order_upsert_telling(data=data)
    order = upserted.order
    if not upserted.new:  # a new order has nothing to count yet: every line's ledger is its zero default
        ledger_recount(order=order)
    if order.state == Order.State.ACCEPTED:
        fulfillment_order_ensure(order=order, new_order_lines=upserted.new_lines)
    if upserted.dispute_was_open and order.state != Order.State.DISPUTE:
        captures_retry_after_dispute(order=order)
    return order


def captures_retry_after_dispute(*, order: Order) -> int:
    """DR refuses captures while the order is in dispute (``409 order_not_submitted``; the warehouse
    may ship meanwhile): once the dispute is resolved they are sent again. Releases are not: a failed
    release has already given its units back to the order (``cancellation_failed``)."""
    refused = [
        instruction
        for instruction in Instruction.objects.filter(
            kind=POST_FULFILLMENT,
            subject=order_subject(order.dr_order_id),
            state=Instruction.State.FAILED,
            last_error_code="order_not_submitted",
        )
        if not any(item.get("cancelQuantity") for item in instruction.payload.get("items", []))
    ]
    return instructions_retry_now(instructions=refused) if refused else 0


# savepoint=False: most callers hold a transaction already; a savepoint would cost two round trips
# per call on the busiest path (issue 14), and a failure rolls back to the caller's savepoint anyway.
@transaction.atomic(savepoint=False)
def fulfillment_order_ensure(*, order: Order, new_order_lines: list[OrderLine] | None = None) -> Instruction | None:
    """Ask DR for a fulfillment order of the distributed lines that have none, once per order.
    ``new_order_lines``: the lines of an order inserted in this transaction, none of them in a
    fulfillment order yet (``order_upsert_telling``), which need not be read again."""
    if new_order_lines is not None:
        lines = [line for line in new_order_lines if line.fulfillment_model == DISTRIBUTED]
    else:
        lines = [
            line
            for line in order.lines.filter(fulfillment_model=DISTRIBUTED).prefetch_related("fulfillment_order_lines")
            if not line.fulfillment_order_lines.all()
        ]
    subject = order_subject(order.dr_order_id)
    already_asked = Instruction.objects.filter(kind=CREATE_FULFILLMENT_ORDER, subject=subject).exclude(
        state=Instruction.State.CANCELLED
    )
    if not lines or already_asked.exists():
        return None
    return instruction_enqueue(
        kind=CREATE_FULFILLMENT_ORDER, subject=subject, payload=fulfillment_order_request(order, lines)
    )


def fulfillment_order_request(order: Order, lines: list[OrderLine], *, reservation_id: str = "") -> JSONObject:
    """The body of POST /fulfillment-orders, mapped from the accepted order (DR's page
    integration-options/checkouts/handling-digital-river-coordinated-fulfillments/global-fulfillments.md,
    "Creating a fulfillment order"); empty values are left out, never sent as null (the spec's
    GlobalFulfillmentOrderRequest takes strings).

    ``reservationId`` names the reservation that placed a hold on the products ("Attaching a
    reservation"; reserving-inventory-items.md): it is sent only when one was made. This app makes
    none and the accepted order carries no reservation id (its checkoutId is only what a storefront
    that reserved would have used as the reservation's id), so in practice it is left out and DR
    allocates the inventory items itself, as the page says it does without one.
    """
    ship_to = order.ship_to or {}
    body = {
        "upstreamId": order.dr_order_id,
        "upstreamOrderTime": order.raw.get("createdTime"),
        "currency": order.currency,
        "shipTo": ship_to,
        "shippingChoice": {"id": (order.shipping_choice or {}).get("serviceLevel") or "SG"},
        "items": [
            {
                "inventoryItemId": line.dr_sku_id,
                "quantity": line.quantity,
                "upstreamId": line.dr_item_id,
                "total": float(line.amount),
                "tax": {"amount": float(line.tax_amount)},
            }
            for line in lines
        ],
        "locale": order.locale,
        "name": ship_to.get("name"),
        "email": order.email,
        "phone": ship_to.get("phone"),
        "reservationId": reservation_id,
    }
    return {key: value for key, value in body.items() if value not in (None, "")}


# --- fulfillment orders ---------------------------------------------------------------------------


def fulfillment_order_event(*, event_type: str, data: JSONObject, as_of: datetime | None = None) -> FulfillmentOrder:
    """fulfillment_order.pending / .backordered / .cancelled: the fulfillment order with running totals."""
    with order_locked(dr_order_id=str(data["upstreamId"])) as order:
        fulfillment_order = fulfillment_order_upsert_locked(order=order, data=data, as_of=as_of)
        if event_type == "fulfillment_order.cancelled" or any(line.cancelled for line in fulfillment_order.lines.all()):
            _release_cancelled_units(fulfillment_order)
    return fulfillment_order


@transaction.atomic(savepoint=False)
def fulfillment_order_upsert(
    *, order: Order, data: JSONObject, as_of: datetime | None = None, created_by_us: bool = False
) -> FulfillmentOrder:
    return fulfillment_order_upsert_locked(
        order=lock_order(order=order), data=data, as_of=as_of, created_by_us=created_by_us
    )


def fulfillment_order_upsert_locked(
    *, order: Order, data: JSONObject, as_of: datetime | None = None, created_by_us: bool = False
) -> FulfillmentOrder:
    """Mirror DR's fulfillment order and its lines; ``order`` is the caller's, read with its lock
    (``lock_order``) in the caller's transaction."""
    as_of = dr_time(data.get("updatedTime")) or as_of
    fulfillment_order, created = get_or_create_under_lock(
        FulfillmentOrder.objects.all(),
        dr_fulfillment_order_id=str(data["id"]),
        defaults={
            "order": order,
            "created_by_us": created_by_us,
            "state": data.get("state") or "",
            "raw": data,
            "dr_updated_at": as_of,
        },
    )
    stale = False
    if not created:  # a new row was written whole (one INSERT, no UPDATE after it)
        stale = bool(fulfillment_order.dr_updated_at and as_of and as_of < fulfillment_order.dr_updated_at)
        fulfillment_order.created_by_us |= created_by_us
        if not stale:
            fulfillment_order.state = data.get("state") or fulfillment_order.state
            fulfillment_order.raw = data
            fulfillment_order.dr_updated_at = as_of or fulfillment_order.dr_updated_at
        fulfillment_order.save()
    order_lines = {line.dr_item_id: line for line in order.lines.all()}
    items = [item for item in data.get("items") or [] if str(item.get("upstreamId")) in order_lines]
    # One read of the lines it already has (none when it is new); an item listed twice finds the
    # line its first listing wrote.
    lines: dict[str, FulfillmentOrderLine] = {}
    if not created:
        existing = FulfillmentOrderLine.objects.select_for_update().filter(dr_item_id__in=[str(i["id"]) for i in items])
        lines = {line.dr_item_id: line for line in existing}
    for item in items:
        order_line = order_lines[str(item.get("upstreamId"))]
        line = _fulfillment_order_line_upsert(
            fulfillment_order, order_line, item, lines.get(str(item["id"])), stale=stale
        )
        lines[line.dr_item_id] = line
        if line.backordered and not stale:
            notifications.notify_backordered(line=line)
    named = [order_lines[str(item.get("upstreamId"))] for item in items]
    # Only this fulfillment order's lines can have changed: the others' shipped units are where they were.
    managed_lines_follow_drs_fulfillments(order, lines=named)
    order_lines_sum_counters(order, lines=order_lines.values())
    return fulfillment_order


def _fulfillment_order_line_upsert(
    fulfillment_order: FulfillmentOrder,
    order_line: OrderLine,
    item: JSONObject,
    found: FulfillmentOrderLine | None,
    *,
    stale: bool,
) -> FulfillmentOrderLine:
    line = found or FulfillmentOrderLine(
        dr_item_id=str(item["id"]),
        fulfillment_order=fulfillment_order,
        order_line=order_line,
        inventory_item_id=item.get("inventoryItemId") or "",
        quantity=int(item.get("quantity") or 0),
    )
    # Shipped, cancelled and returned only grow; pending and backordered follow the newest snapshot.
    for counter in ("shipped", "cancelled", "returned"):
        setattr(line, counter, max(getattr(line, counter), int(item.get(counter) or 0)))
    if not stale:
        if "pending" in item:  # a backordered event may name only the units it is about
            line.pending = int(item.get("pending") or 0)
        line.backordered = _backordered_units(item, line)
        line.state = item.get("state") or line.state
        line.available_time = dr_time(item.get("availableTime")) or line.available_time
    line.save()  # no race on a new line's INSERT: it is written under the order's lock
    return line


def managed_lines_follow_drs_fulfillments(order: Order, *, lines: Iterable[OrderLine] | None = None) -> None:
    """Orchestrated lines ship from DR's own fulfillment order, and DR says so only with
    fulfillment.created (no fulfillment_order.shipped): the units such a line shipped are shipped on
    its fulfillment-order lines too, oldest first, whichever of the two events came first.
    ``lines`` are the order's lines as the caller, holding the order's lock, read them."""
    managed = (
        order.lines.filter(fulfillment_model=ORCHESTRATED)
        if lines is None
        else [line for line in lines if line.fulfillment_model == ORCHESTRATED]
    )
    for order_line in managed:
        left = order_line.shipped
        for line in FulfillmentOrderLine.objects.select_for_update().filter(order_line=order_line).order_by("pk"):
            before = (line.shipped, line.pending, line.backordered)
            line.shipped = max(line.shipped, min(left, line.quantity - line.cancelled))
            left = max(left - line.shipped, 0)
            open_units = max(line.quantity - line.shipped - line.cancelled - line.returned, 0)
            line.pending = min(line.pending, open_units)
            line.backordered = min(line.backordered, open_units - line.pending)
            if (line.shipped, line.pending, line.backordered) != before:
                line.save(update_fields=["shipped", "pending", "backordered"])


def _backordered_units(item: JSONObject, line: FulfillmentOrderLine) -> int:
    """The line's backordered units now.

    A fulfillment order's snapshot counts them in ``backordered``. The items of a
    ``fulfillment_order.backordered`` event are different: ``backordered`` is the units that
    triggered this event and ``totalBackordered`` the running total over all of them (DR's page
    integration-options/checkouts/handling-digital-river-coordinated-fulfillments/global-fulfillments.md,
    "Fulfillment order backordered events"), so the total is read when present: duplicates and
    reordering then cannot inflate or shrink it. Never more than the units not yet settled.
    """
    total = item.get("totalBackordered")
    units = int(total if total is not None else item.get("backordered") or 0)
    return max(0, min(units, line.quantity - line.shipped - line.cancelled - line.returned))


def order_lines_sum_counters(
    order: Order,
    *,
    lines: Iterable[OrderLine] | None = None,
    unsaved: Mapping[int, Iterable[str]] | None = None,
    fulfillment_order_lines: Iterable[FulfillmentOrderLine] | None = None,
) -> None:
    """Each order line's pending and backordered units: the sums over its fulfillment-order lines.
    ``lines`` are the order's lines as the caller, holding the order's lock, read them; ``unsaved``
    names, by line id, fields the caller changed on them and left to be written here, in the same
    UPDATE as the sums (a shipment's shipped units); ``fulfillment_order_lines``, all the order's,
    as the caller holds them (else they are summed in the database)."""
    totals: dict[int, tuple[int, int]] = {}  # order line id -> (pending, backordered)
    if fulfillment_order_lines is None:
        sums = (
            FulfillmentOrderLine.objects.filter(order_line__order=order)
            .values("order_line")
            .annotate(pending_sum=Sum("pending"), backordered_sum=Sum("backordered"))
        )
        totals = {row["order_line"]: (row["pending_sum"], row["backordered_sum"]) for row in sums}
    else:
        for counted in fulfillment_order_lines:
            pending, backordered = totals.get(counted.order_line_id, (0, 0))
            totals[counted.order_line_id] = (pending + counted.pending, backordered + counted.backordered)
    for line in order.lines.select_for_update() if lines is None else lines:
        changed = list((unsaved or {}).get(line.pk, ()))
        total = totals.get(line.pk)
        if total is not None and (line.pending, line.backordered) != total:
            line.pending, line.backordered = total
            changed += ["pending", "backordered"]
        if changed:
            line.save(update_fields=changed)
    backordered = sum(units for _, units in totals.values())
    attention_follow_locked(
        order=order,
        kind="backordered",
        raised=bool(backordered),
        reason=f"{backordered} unit(s) are backordered at the warehouse.",
        because="No unit is backordered any more.",
    )


def _release_cancelled_units(fulfillment_order: FulfillmentOrder) -> Instruction | None:
    """Release the payment of units the warehouse cancelled that we have not released yet."""
    items = []
    lines = fulfillment_order.lines.select_for_update().select_related("order_line")
    for line in lines:
        due = line.cancelled - line.cancel_instructed
        if due <= 0:
            continue
        if line.order_line.fulfillment_model == DISTRIBUTED:
            items.append({"itemId": line.order_line.dr_item_id, "cancelQuantity": due})
        # Orchestrated lines are released by DR itself; either way these units are now accounted for.
        line.cancel_instructed = line.cancelled
        line.save(update_fields=["cancel_instructed"])
    if not items:
        return None
    order = fulfillment_order.order
    return instruction_enqueue(
        kind=POST_FULFILLMENT,
        subject=order_subject(order.dr_order_id),
        payload={"orderId": order.dr_order_id, "items": items},
    )


# --- charges and the outcome of our POST /fulfillments ---------------------------------------------


# The charge events that mean money did not move as asked: a person must look.
CHARGE_TROUBLE = ("order.charge.capture.failed", "order.charge.failed", "order.charge.reauth.failed")


def charge_reported(*, event_type: str, data: JSONObject) -> None:
    """order.charge.*: mirror the charge; a failed capture or authorization flags the order.

    Not every ``order.charge.*`` event carries a charge: ``order.charge.reauth.failed`` carries the
    order, and DR's pages show ``order.charge.failed`` with an order too (all-event-types.md in the
    DigitalRiver/GitBook repository). An object with ``payment`` or ``items`` is read as the order,
    with its charges in ``payment.charges``; either way the flag is raised.
    """
    is_order = "payment" in data or "items" in data
    dr_order_id = str(data["id"] if is_order else data["orderId"])
    with order_locked(dr_order_id=dr_order_id) as order:
        if is_order:
            order_upsert(data=data)
            charges = (data.get("payment") or {}).get("charges") or []
        else:
            charge_upsert(order=order, data=data)
            charges = [data]
        ledger_recount(order=order)
        if event_type in CHARGE_TROUBLE:
            failed = [c for charge in charges for c in charge.get("captures") or [] if c.get("state") == "failed"]
            reasons = [c.get("failureMessage") or c.get("failureCode") for c in failed]
            if event_type == "order.charge.reauth.failed":
                attention_raise(
                    order=order,
                    kind="authorization_lapsed",
                    reason="DR could not authorize the payment again (the authorization lapsed).",
                    source=event_type,
                )
                reasons.append("DR could not authorize the payment again (the authorization lapsed)")
            else:
                attention_raise(
                    order=order,
                    kind="capture_failed",
                    reason="; ".join(filter(None, reasons)) or "DR reported the charge failed.",
                    source=event_type,
                )
            # One email per failure, whichever event (or both) reports it; a lapsed authorization is
            # a failure of its own.
            source = (
                ":".join(
                    [
                        *(["reauth", dr_order_id] if event_type == "order.charge.reauth.failed" else []),
                        *sorted(str(charge.get("id")) for charge in charges),
                        *sorted(str(c.get("id")) for c in failed),
                    ]
                )
                or f"{event_type}:{dr_order_id}"
            )
            notifications.notify_capture_failed(order=order, source=source, reason="; ".join(filter(None, reasons)))


def fulfillment_accepted(*, payload: JSONObject, result: JSONObject, instruction_id: int | None = None) -> None:
    """DR accepted (or already held) our POST /fulfillments: count the captured and released units.

    ``result["alreadyDone"]`` holds order-level 409 codes, which settle every line of the request;
    ``result["settledBefore"]`` the lines a 409 ``item_fulfilled`` / ``item_cancelled`` named, which
    settle only that line (the performer sent the others again). ``*_cancelled`` means the units were
    released, ``*_fulfilled`` that they were captured: asked the other way round, a person must look.
    """
    order_codes = set(result.get("alreadyDone") or [])
    by_line = {str(entry["itemId"]): entry["code"] for entry in result.get("settledBefore") or []}
    order = lock_order(dr_order_id=payload["orderId"])
    # All the order's lines, not only the request's: the ledger below counts every one.
    lines = {line.dr_item_id: line for line in order.lines.select_for_update()}
    capture_refused, release_refused = set(), set()
    cancelled = []
    for item in payload.get("items", []):
        line = lines.get(str(item["itemId"]))
        if line is None:
            continue
        captured, released = int(item.get("quantity") or 0), int(item.get("cancelQuantity") or 0)
        codes = order_codes | ({by_line[line.dr_item_id]} if line.dr_item_id in by_line else set())
        if captured and codes & RELEASED_CODES:
            capture_refused |= codes & RELEASED_CODES  # shipped units on a cancelled order or item
            captured = 0
        if released and codes & CAPTURED_CODES:
            release_refused |= codes & CAPTURED_CODES  # the units were captured: nothing was released
            released = 0
        _, released = line_units_settle(line, captured, released)
        if released:
            units_released(order_line=line, quantity=released, instruction_id=instruction_id)
            cancelled.append((line, released))
    if result.get("id"):
        # Our own fulfillment, so that DR's capture of it (captures[].fulfillmentId) finds its lines
        # even when DR's fulfillment.created event is late or never comes.
        # One INSERT that keeps the record DR's fulfillment.created event may have written first.
        insert_unless_exists(
            DrFulfillment(
                order=order,
                dr_fulfillment_id=str(result["id"]),
                items=result.get("items") or payload.get("items") or [],
                dr_created_at=dr_time(result.get("createdTime")),
                raw=result,
            ),
            unique_field="dr_fulfillment_id",
        )
    ledger_recount(order=order, locked_lines=lines.values())
    if cancelled:
        notifications.notify_cancelled(order=order, released=cancelled, source=f"instruction:{instruction_id}")
    if release_refused:
        attention_raise(
            order=order,
            kind="cancellation_rejected",
            reason=f"DR had already captured units we asked to release ({', '.join(sorted(release_refused))}).",
            source=f"instruction:{instruction_id}",
        )
    if capture_refused:
        attention_raise(
            order=order,
            kind="capture_failed",
            reason=f"DR refused to capture shipped units ({', '.join(sorted(capture_refused))}).",
            source=f"instruction:{instruction_id}",
        )
        notifications.notify_capture_failed(
            order=order,
            source=f"instruction:{instruction_id}",
            reason=f"DR answered {', '.join(sorted(capture_refused))}",
        )


def line_units_settle(line: OrderLine, captured: int, released: int) -> tuple[int, int]:
    """Add captured and released units to the line, never past its quantity; returns what was added."""
    captured = max(0, min(captured, line.quantity - line.fulfilled - line.cancelled))
    line.fulfilled += captured
    released = max(0, min(released, line.quantity - line.fulfilled - line.cancelled))
    line.cancelled += released
    line.save(update_fields=["fulfilled", "cancelled"])
    return captured, released


def fulfillment_refused(*, payload: JSONObject, instruction_id: int, reason: str) -> None:
    """DR refused our POST /fulfillments for good: a capture that never happened needs a person."""
    if any(item.get("quantity") for item in payload.get("items", [])):
        order = lock_order(dr_order_id=payload["orderId"])
        attention_raise(
            order=order,
            kind="capture_failed",
            reason=f"DR refused the capture: {reason}",
            source=f"instruction:{instruction_id}",
        )
        notifications.notify_capture_failed(order=order, source=f"instruction:{instruction_id}", reason=reason)
