"""The chaos run's reversals: stories with returns and refunds, the steps that play them, and what the
run must end with (imported by chaos_driver.py; the checks are asserted by test_chaos.py).

Customer service starts returns of shipped units (DR-coordinated lines become fulfillment returns,
third-party and digital lines one `/returns`), the fulfiller approves, receives (all or fewer units
than asked) or rejects, our partner's return is received in two parcels, and customer service refunds
the accepted units, an amount or the shipping; one story pays with DR's test card whose refunds fail
(`4000 0000 0000 4111`) and retries the refund once the bank takes it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

A, B, ORCH, T, G = "CH-DIST-A", "CH-DIST-B", "CH-ORCH", "CH-TP", "CH-DIG"
REFUND_FAILS_CARD = "4000000000004111"
REVERSAL_EVENT_PREFIXES = ("fulfillment_return.", "return.", "refund.", "order.charge.refund.", "order.refunded")


@dataclass
class Step:
    # ship, ship_managed, wh_cancel, wh_cancel_managed, record, cs_cancel, cs_cancel_all, accepted,
    # and the reversals (REVERSAL_KINDS)
    kind: str
    items: tuple[tuple[str, int], ...] = ()
    amount: str = ""


@dataclass
class Story:
    name: str
    lines: tuple[tuple[str, int], ...]
    steps: tuple[Step, ...]
    state: str  # our order's state at the end
    end: dict[str, tuple[int, int, int]]  # per SKU: shipped, captured, released
    returned: dict[str, int] = field(default_factory=dict)  # per SKU: units accepted back
    refunds: tuple[int, int, int] = (0, 0, 0)  # ours succeeded, ours failed, DR's own succeeded
    card: str = ""


REVERSAL_KINDS = frozenset(
    {
        "cs_return",  # customer service starts a return of the items
        "fr_approve",  # the fulfiller approves the fulfillment return of items[0]'s SKU
        "fr_receive",  # … receives it, accepting items[0]'s quantity
        "fr_reject",  # … rejects it
        "partner_receive",  # our partner received one parcel of the /returns
        "cs_refund_return",  # customer service refunds the accepted units of items[0]'s fulfillment return
        "cs_refund_amount",
        "cs_refund_shipping",
        "refund_failed",  # wait: the bank refused one of our refunds
        "bank_fixed",  # the customer's bank takes refunds again
        "cs_refund_retry",  # customer service retries the failed refund
    }
)

S = Step
STORIES = (
    Story(
        "distributed, a return received in full and its units refunded",
        ((A, 2), (B, 1)),
        (
            S("ship", ((A, 2), (B, 1))),
            S("cs_return", ((A, 2),)),
            S("fr_approve", ((A, 0),)),
            S("fr_receive", ((A, 2),)),
            S("cs_refund_return", ((A, 0),)),
        ),
        "complete",
        {A: (2, 2, 0), B: (1, 1, 0)},
        returned={A: 2},
        refunds=(1, 0, 0),
    ),
    Story(
        "distributed, the warehouse receives fewer units than asked; those and the shipping refunded",
        ((A, 3),),
        (
            S("ship", ((A, 3),)),
            S("cs_return", ((A, 3),)),
            S("fr_approve", ((A, 0),)),
            S("fr_receive", ((A, 1),)),
            S("cs_refund_return", ((A, 0),)),
            S("cs_refund_shipping"),
        ),
        "complete",
        {A: (3, 3, 0)},
        returned={A: 1},
        refunds=(2, 0, 0),
    ),
    Story(
        "orchestrated, the warehouse rejects the return; an amount refunded instead",
        ((ORCH, 2),),
        (
            S("ship_managed", ((ORCH, 2),)),
            S("cs_return", ((ORCH, 1),)),
            S("fr_approve", ((ORCH, 0),)),
            S("fr_reject", ((ORCH, 0),)),
            S("cs_refund_amount", amount="5.00"),
        ),
        "complete",
        {ORCH: (2, 2, 0)},
        refunds=(1, 0, 0),
    ),
    Story(
        "third-party, our partner receives the return in two parcels and DR refunds it",
        ((T, 3), (G, 1)),
        (
            S("record", ((T, 3), (G, 1))),
            S("cs_return", ((T, 2),)),
            S("partner_receive", ((T, 1),)),
            S("partner_receive", ((T, 1),)),
        ),
        "complete",
        {T: (3, 3, 0), G: (1, 1, 0)},
        returned={T: 2},
        refunds=(0, 0, 1),
    ),
    Story(
        "third-party and digital returned together, one parcel of two received; an amount refunded",
        ((T, 2), (G, 2)),
        (
            S("record", ((T, 2), (G, 2))),
            S("cs_return", ((T, 1), (G, 1))),
            S("partner_receive", ((G, 1),)),
            S("cs_refund_amount", amount="10.00"),
        ),
        "complete",
        {T: (2, 2, 0), G: (2, 2, 0)},
        returned={G: 1},
        refunds=(1, 0, 0),
    ),
    Story(
        "the refund of a return fails at the bank (card 4111) and customer service retries it",
        ((A, 1), (T, 1)),
        (
            S("ship", ((A, 1),)),
            S("record", ((T, 1),)),
            S("cs_return", ((A, 1),)),
            S("fr_approve", ((A, 0),)),
            S("fr_receive", ((A, 1),)),
            S("cs_refund_return", ((A, 0),)),
            S("refund_failed"),
            S("bank_fixed"),
            S("cs_refund_retry"),
            S("cs_refund_shipping"),
        ),
        "complete",
        {A: (1, 1, 0), T: (1, 1, 0)},
        returned={A: 1},
        refunds=(2, 1, 0),
        card=REFUND_FAILS_CARD,
    ),
    Story(
        "every model: two warehouse returns and a partner return in one request, all refunds mixed",
        ((A, 2), (ORCH, 1), (T, 2), (G, 1)),
        (
            S("ship", ((A, 2),)),
            S("ship_managed", ((ORCH, 1),)),
            S("record", ((T, 2), (G, 1))),
            S("cs_return", ((A, 1), (ORCH, 1), (T, 1), (G, 1))),
            S("fr_approve", ((A, 0),)),
            S("fr_approve", ((ORCH, 0),)),
            S("fr_receive", ((A, 1),)),
            S("fr_reject", ((ORCH, 0),)),
            S("partner_receive", ((T, 1),)),
            S("partner_receive", ((G, 1),)),
            S("cs_refund_return", ((A, 0),)),
            S("cs_refund_amount", amount="3.00"),
        ),
        "complete",
        {A: (2, 2, 0), ORCH: (1, 1, 0), T: (2, 2, 0), G: (1, 1, 0)},
        returned={A: 1, T: 1, G: 1},
        refunds=(2, 0, 1),
    ),
    Story(
        "customer service cancels a unit, the rest ships, one comes back and is refunded",
        ((A, 3),),
        (
            S("cs_cancel", ((A, 1),)),
            S("accepted"),
            S("ship", ((A, 2),)),
            S("cs_return", ((A, 1),)),
            S("fr_approve", ((A, 0),)),
            S("fr_receive", ((A, 1),)),
            S("cs_refund_return", ((A, 0),)),
        ),
        "complete",
        {A: (2, 2, 1)},
        returned={A: 1},
        refunds=(1, 0, 0),
    ),
)


# --- playing the steps ----------------------------------------------------------------------------


def _order(run: Any):
    from commerce.models import Order

    order = Order.objects.filter(dr_order_id=run.dr_order_id).first()
    if order is None or order.lines.count() != len(run.story.lines):
        return None
    return order


def _fulfillment_return(run: Any, sku: str):
    """The sandbox's fulfillment return (one we asked for) of the SKU's line."""
    from sandbox.models import FulfillmentReturn

    return (
        FulfillmentReturn.objects.filter(
            upstream_id=run.dr_order_id,
            type=FulfillmentReturn.Type.CLIENT,
            items__fulfillment_order_item__upstream_id=run.items[sku],
        )
        .order_by("pk")
        .first()
    )


def _our_return(order: Any, item_id: str, api: str):
    from fulfillment.models import Return

    return Return.objects.filter(order=order, api=api, lines__order_line__dr_item_id=item_id).order_by("pk").first()


def try_step(run: Any, step: Step) -> bool:
    """Run a reversal step if what it needs is there; True if it ran."""
    from sandbox.models import FulfillmentReturn
    from sandbox.services.returns import (
        fulfillment_return_approve,
        fulfillment_return_receive,
        fulfillment_return_reject,
    )

    if step.kind in ("fr_approve", "fr_receive", "fr_reject"):
        sku, units = step.items[0]
        found = _fulfillment_return(run, sku)
        if found is None:
            return False
        if step.kind == "fr_approve":
            if found.state != FulfillmentReturn.State.CREATED:
                return False
            fulfillment_return_approve(return_id=found.dr_id)
        elif step.kind == "fr_receive":
            if found.state != FulfillmentReturn.State.PENDING:
                return False
            line = found.items.select_related("fulfillment_order_item").get(
                fulfillment_order_item__upstream_id=run.items[sku]
            )
            fulfillment_return_receive(return_id=found.dr_id, accepted={line.fulfillment_order_item.dr_id: units})
        else:
            if found.state not in (FulfillmentReturn.State.CREATED, FulfillmentReturn.State.PENDING):
                return False
            fulfillment_return_reject(return_id=found.dr_id)
        return True
    if step.kind == "bank_fixed":
        from sandbox.models import Source

        for source in Source.objects.filter(order__dr_id=run.dr_order_id):
            source.data = {**source.data, "creditCard": {**source.data.get("creditCard", {}), "lastFourDigits": "1111"}}
            source.save(update_fields=["data"])
        return True
    order = _order(run)
    if order is None:
        return False
    return _customer_service(run, order, step)


def _customer_service(run: Any, order: Any, step: Step) -> bool:
    from commerce.models import Refund
    from commerce.refunds import RefundRefused, refund_execute, refund_plan, refund_request, refund_retry
    from fulfillment.models import Return
    from fulfillment.returns import (
        ReturnRefused,
        return_execute,
        return_plan,
        return_received_execute,
        return_received_plan,
        return_refund_offer,
        returnable_units,
    )

    reason = "chaos: customer service"
    if step.kind == "cs_return":
        room = {entry.line.dr_item_id: entry.quantity for entry in returnable_units(order=order).values()}
        asked = [(run.items[sku], units) for sku, units in step.items]
        if any(room.get(item_id, 0) < units for item_id, units in asked):
            return False  # not shipped, captured or mirrored yet
        plan = return_plan(order=order, items=asked, reason=reason)
        if plan.refusal:
            return False
        try:
            return_execute(plan=plan)
        except ReturnRefused:
            return False
        return True
    if step.kind == "partner_receive":
        ret = _our_return(order, run.items[step.items[0][0]], Return.Api.RETURNS)
        if ret is None:
            return False
        receipt = return_received_plan(ret=ret, items=[(run.items[sku], units) for sku, units in step.items])
        if receipt.refusal:
            return False
        try:
            return_received_execute(plan=receipt)
        except ReturnRefused:
            return False
        return True
    if step.kind == "cs_refund_return":
        ret = _our_return(order, run.items[step.items[0][0]], Return.Api.FULFILLMENT_RETURNS)
        if ret is None or ret.state != Return.State.ACCEPTED:
            return False
        offer = return_refund_offer(ret=ret)
        if not offer or refund_plan(order=order, reason=reason, items=offer, for_return=ret.dr_return_id).refusal:
            return False  # the accepted units or their capture are not mirrored yet
        return refund_request(order=order, items=offer, reason=reason, for_return=ret.dr_return_id) is not None
    if step.kind == "refund_failed":
        return order.refunds.filter(initiated_by_dr=False, state=Refund.State.FAILED).exists()
    if step.kind == "cs_refund_retry":
        failed = order.refunds.filter(state=Refund.State.FAILED, retries__isnull=True).first()
        if failed is None:
            return False
        try:
            refund_retry(refund=failed)
        except RefundRefused:
            return False
        return True
    if step.kind in ("cs_refund_amount", "cs_refund_shipping"):
        how: dict[str, Any] = (
            {"amount": Decimal(step.amount)} if step.kind == "cs_refund_amount" else {"type": "shipping"}
        )
        plan = refund_plan(order=order, reason=reason, **how)
        if plan.refusal:
            return False
        try:
            refund_execute(plan=plan)
        except RefundRefused:
            return False
        return True
    raise ValueError(step.kind)


# --- what the run ends with -------------------------------------------------------------------------


def _money(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def collect_order(run: Any) -> dict:
    """Returns and refunds of one order, ours and the sandbox's, per line and per order."""
    from commerce.models import Order, Refund
    from digitalriver.models import Instruction
    from fulfillment.models import Return
    from sandbox.models import FulfillmentReturnItem, ReturnItem
    from sandbox.models import Order as DrOrder
    from sandbox.models import Refund as DrRefund
    from sandbox.models import Return as DrReturn

    ours = Order.objects.filter(dr_order_id=run.dr_order_id).first()
    dr_order = DrOrder.objects.get(dr_id=run.dr_order_id)
    accepted: Counter[str] = Counter()
    for item_id, units in FulfillmentReturnItem.objects.filter(
        fulfillment_return__upstream_id=run.dr_order_id
    ).values_list("fulfillment_order_item__upstream_id", "quantity_accepted"):
        accepted[item_id] += units
    for item_id, units in ReturnItem.objects.filter(return_request__order=dr_order).values_list(
        "order_item__dr_id", "quantity_accepted"
    ):
        accepted[item_id] += units
    lines = {}
    for sku, item_id in run.items.items():
        line = ours.lines.filter(dr_item_id=item_id).first() if ours else None
        lines[sku] = {
            "dr_accepted": accepted[item_id],
            "ours": None
            if line is None
            else {
                "fulfilled": line.fulfilled,
                "captured": line.captured,
                "returned": line.returned,
                "return_requested": line.return_requested,
                "captured_amount": _money(line.captured_amount),
                "refunded_amount": _money(line.refunded_amount),
            },
        }
    refunds = list(ours.refunds.order_by("pk")) if ours else []
    returns = list(ours.returns.order_by("pk")) if ours else []
    dr_returns = {r.dr_id: r.state for r in run_fulfillment_returns(run.dr_order_id)}
    dr_returns.update(DrReturn.objects.filter(order=dr_order).values_list("dr_id", "state"))
    subject = f"order:{run.dr_order_id}"
    kinds = ("commerce.create_refund", "fulfillment.create_fulfillment_return", "fulfillment.create_return")
    reversal_instructions = Instruction.objects.filter(subject=subject).filter(
        kind__in=[*kinds, "fulfillment.receive_return"]
    )
    return {
        "lines": lines,
        "ours": None
        if ours is None
        else {
            "refunded_amount": _money(ours.refunded_amount),
            "succeeded_refunds_sum": _money(
                sum((r.refunded_amount for r in refunds if r.state == Refund.State.SUCCEEDED), Decimal("0"))
            ),
            "refund_failed_open": ours.refund_failed,
        },
        "dr": {"refunded_amount": _money(dr_order.refunded_amount)},
        "refunds": [
            {
                "reference": str(r.reference),
                "dr_refund_id": r.dr_refund_id,
                "initiated_by_dr": r.initiated_by_dr,
                "state": r.state,
                "amount": _money(r.amount),
                "refunded_amount": _money(r.refunded_amount),
                "retry_of": r.retry_of_id,
            }
            for r in refunds
        ],
        "dr_refunds": [
            {
                "id": r.dr_id,
                "reference": (r.metadata or {}).get("refundReference"),
                "for_return": r.return_request.dr_id if r.return_request else None,
                "state": r.state,
                "refunded_amount": _money(r.refunded_amount),
            }
            for r in DrRefund.objects.filter(order=dr_order).select_related("return_request").order_by("pk")
        ],
        "returns": [
            {"id": r.pk, "api": r.api, "dr_return_id": r.dr_return_id, "state": r.state, "type": r.type}
            for r in returns
        ],
        "dr_returns": dr_returns,
        "instructions_not_done": [
            f"{i.pk} {i.kind} {i.state}: {i.last_error[:200]}"
            for i in reversal_instructions.exclude(state=Instruction.State.DONE)
        ],
        "open_returns_ours": [r.pk for r in returns if r.state in (Return.State.REQUESTED, Return.State.FAILED)],
    }


def run_fulfillment_returns(dr_order_id: str):
    from sandbox.models import FulfillmentReturn

    return FulfillmentReturn.objects.filter(upstream_id=dr_order_id)


def collect_events() -> dict:
    """Every event about returns and refunds, by the state our inbox left it in."""
    from digitalriver.models import WebhookEvent

    by_state: Counter[str] = Counter()
    not_processed = []
    for pk, kind, state, error in WebhookEvent.objects.values_list("pk", "type", "state", "error"):
        if not kind.startswith(REVERSAL_EVENT_PREFIXES):
            continue
        by_state[state] += 1
        if state != WebhookEvent.State.PROCESSED:
            not_processed.append(f"{pk} {kind} {state}: {(error or '').splitlines()[:1]}")
    return {"by_state": dict(by_state), "not_processed": not_processed}


def figures(orders: list[dict]) -> dict:
    """The run's returns and refunds in numbers, for the report the test prints."""
    counts: dict[str, Any] = defaultdict(int)
    refunded = Decimal("0")
    for order in orders:
        reversals = order.get("reversals") or {}
        for ret in reversals.get("returns", []):
            counts[f"returns_{ret['api']}_{ret['state']}"] += 1
        for line in reversals.get("lines", {}).values():
            counts["units_returned"] += (line["ours"] or {}).get("returned", 0)
        for refund in reversals.get("refunds", []):
            who = "dr" if refund["initiated_by_dr"] else "ours"
            counts[f"refunds_{who}_{refund['state']}"] += 1
            counts["refund_retries"] += 1 if refund["retry_of"] else 0
        refunded += Decimal((reversals.get("ours") or {}).get("refunded_amount", "0"))
    counts["refunded_amount"] = str(refunded)
    return dict(sorted(counts.items()))


# --- the checks (test_chaos.py) --------------------------------------------------------------------


def problems(order: dict) -> Iterator[str]:
    """What is wrong with one order's returns and refunds at the end of the run."""
    reversals, story = order["reversals"], order["story_reversals"]
    for sku, line in reversals["lines"].items():
        ours = line["ours"]
        if ours is None:
            continue
        if Decimal(ours["refunded_amount"]) > Decimal(ours["captured_amount"]):
            yield f"{sku}: refunded {ours['refunded_amount']} > captured {ours['captured_amount']}"
        if ours["returned"] > ours["fulfilled"]:
            yield f"{sku}: returned {ours['returned']} > fulfilled {ours['fulfilled']}"
        if ours["returned"] != line["dr_accepted"]:
            yield f"{sku}: ours returned {ours['returned']}, DR's returns accepted {line['dr_accepted']}"
        if ours["returned"] != story["returned"].get(sku, 0):
            yield f"{sku}: returned {ours['returned']}, the story returns {story['returned'].get(sku, 0)}"
        if ours["return_requested"] and not _open_partner_return(reversals):
            yield f"{sku}: {ours['return_requested']} units still in a return"
    ours = reversals["ours"]
    if ours is None:
        return
    if ours["refunded_amount"] != reversals["dr"]["refunded_amount"]:
        yield f"refunded: ours {ours['refunded_amount']}, DR {reversals['dr']['refunded_amount']}"
    if ours["refunded_amount"] != ours["succeeded_refunds_sum"]:
        yield f"refunded {ours['refunded_amount']}, our succeeded refunds add up to {ours['succeeded_refunds_sum']}"
    if ours["refund_failed_open"]:
        yield "a refund_failed attention item is left open"
    yield from _one_refund_at_dr_per_refund_of_ours(reversals)
    yield from _states_agree(reversals)
    got = Counter(
        ("dr" if r["initiated_by_dr"] else "ours", r["state"]) for r in reversals["refunds"] if r["state"] != "refused"
    )
    expected = dict(zip(("ours succeeded", "ours failed", "dr succeeded"), story["refunds"], strict=True))
    have = {"ours succeeded": got["ours", "succeeded"], "ours failed": got["ours", "failed"]}
    have["dr succeeded"] = got["dr", "succeeded"]
    if have != expected or sum(got.values()) != sum(story["refunds"]):
        yield f"refunds {dict(got)}, the story expects {expected}"
    for instruction in reversals["instructions_not_done"]:
        yield f"instruction not done: {instruction}"
    for pk in reversals["open_returns_ours"]:
        yield f"our return {pk} never reached DR"


def _open_partner_return(reversals: dict) -> bool:
    return any(r["api"] == "returns" and r["state"] == "created" for r in reversals["returns"])


def _one_refund_at_dr_per_refund_of_ours(reversals: dict) -> Iterator[str]:
    by_reference = Counter(r["reference"] for r in reversals["dr_refunds"] if r["reference"])
    for refund in reversals["refunds"]:
        if refund["initiated_by_dr"]:
            continue
        expected = 0 if refund["state"] == "refused" else 1
        if by_reference[refund["reference"]] != expected:
            yield f"our refund {refund['reference']} ({refund['state']}) is {by_reference[refund['reference']]} at DR"
    ours_by_dr_id = {r["dr_refund_id"]: r for r in reversals["refunds"] if r["initiated_by_dr"]}
    theirs = [r for r in reversals["dr_refunds"] if not r["reference"]]
    for refund in theirs:
        if not refund["for_return"]:
            yield f"DR's refund {refund['id']} names no reference of ours nor a return"
        if refund["id"] not in ours_by_dr_id:
            yield f"DR's own refund {refund['id']} (return {refund['for_return']}) is not mirrored"
    if len(ours_by_dr_id) != len(theirs):
        yield f"{len(ours_by_dr_id)} refunds of ours say DR made them, DR made {len(theirs)}"
    known = {r["reference"] for r in reversals["refunds"]}
    for refund in reversals["dr_refunds"]:
        if refund["reference"] and refund["reference"] not in known:
            yield f"DR's refund {refund['id']} carries a reference we do not know"


def _states_agree(reversals: dict) -> Iterator[str]:
    dr_states = {r["id"]: r["state"] for r in reversals["dr_refunds"]}
    dr_paid = {r["id"]: r["refunded_amount"] for r in reversals["dr_refunds"]}
    for refund in reversals["refunds"]:
        dr_id = refund["dr_refund_id"]
        if refund["state"] == "refused":
            continue
        if not dr_id or dr_states.get(dr_id) != refund["state"]:
            yield f"refund {refund['reference']}: ours {refund['state']}, DR {dr_states.get(dr_id)}"
        elif refund["refunded_amount"] != dr_paid[dr_id]:
            yield f"refund {dr_id}: ours paid {refund['refunded_amount']}, DR {dr_paid[dr_id]}"
    for ret in reversals["returns"]:
        dr_state = reversals["dr_returns"].get(ret["dr_return_id"])
        if dr_state != ret["state"]:
            yield f"return {ret['id']} ({ret['api']}): ours {ret['state']}, DR {dr_state}"
    if len({r["dr_return_id"] for r in reversals["returns"]}) != len(reversals["dr_returns"]):
        yield f"{len(reversals['returns'])} returns of ours, {len(reversals['dr_returns'])} at DR"
