"""The returns' part of the order's timeline (desk.timeline merges it): each return, who started
it or that the warehouse did, each state DR moved it to, and the return instructions in words."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch
from django_fsm_log.models import StateLog

from commerce.models import Order, units_of
from digitalriver.models import Instruction
from fulfillment.kinds import CREATE_RETURN, RECEIVE_RETURN
from fulfillment.models import Return, ReturnLine

from .timeline import ERROR, OK, InstructionWords, TimelineEntry, _admin_link, _joined, _listed, _newest, units_of_item


def return_words(instruction: Instruction, names: dict[str, str]) -> InstructionWords:
    payload = instruction.payload or {}
    if instruction.kind == RECEIVE_RETURN:
        units = payload.get("units") or {}
        goods = _listed([units_of(int(n), names.get(str(item), "an item")) for item, n in units.items()])
        return InstructionWords(f"Tell DR that {goods} came back", f"Told DR that {goods} came back")
    if instruction.kind == CREATE_RETURN:
        goods = _listed([units_of_item(item, "quantity", "itemId", names) for item in payload.get("items") or []])
        return InstructionWords(f"Tell DR our partner takes back {goods}", f"DR has the return of {goods}")
    count = sum(int(item.get("quantity") or 0) for item in payload.get("items") or [])
    goods = f"{count} unit{'' if count == 1 else 's'}"
    return InstructionWords(
        f"Ask DR's warehouse to take back {goods} (fulfillment order {payload.get('fulfillmentOrderId')})",
        f"DR's warehouse has the return of {goods}",
    )


RETURN_LINES = Prefetch("lines", queryset=ReturnLine.objects.select_related("order_line").order_by("id"))


def _returned_goods(ret: Return) -> str:
    return _listed([units_of(line.quantity, line.order_line.label) for line in ret.lines.all()])


def return_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """Each return: who started it (or that the warehouse did), and each state DR moved it to."""
    returns = {
        ret.pk: ret
        for ret in _newest(
            Return.objects.filter(order=order).select_related("requested_by").prefetch_related(RETURN_LINES),
            "created_at",
            limit,
        )
    }
    for ret in returns.values():
        if ret.type == Return.Type.WAREHOUSE:
            sentence = f"The warehouse is sending back a refused parcel: {_returned_goods(ret)}"
        elif ret.requested_by is not None:
            sentence = f"{ret.requested_by.get_username()} started a return of {_returned_goods(ret)}"
        else:
            sentence = f"Return of {_returned_goods(ret)} started at DR"
        yield TimelineEntry(
            at=ret.created_at,
            source="return",
            sentence=sentence,
            detail=_joined(ret.reason and f"reason: {ret.reason}", ret.get_api_display()),
            links=(_admin_link("return", Return, ret.pk),),
        )
    logs = list(
        _newest(
            StateLog.objects.filter(
                content_type=ContentType.objects.get_for_model(Return),
                object_id__in=Return.objects.filter(order=order).values("pk"),
            ),
            "timestamp",
            limit,
        )
    )
    missing = {log.object_id for log in logs} - returns.keys()
    if missing:
        returns.update(Return.objects.prefetch_related(RETURN_LINES).in_bulk(missing))
    labels = dict(Return.State.choices)
    tones = {Return.State.ACCEPTED: OK, Return.State.REJECTED: ERROR, Return.State.FAILED: ERROR}
    for log in logs:
        ret = returns[log.object_id]
        yield TimelineEntry(
            at=log.timestamp,
            source="return",
            sentence=f"Return of {_returned_goods(ret)}: {labels.get(log.state, log.state).lower()}",
            detail=log.description or "",
            tone=tones.get(log.state, ""),
            links=(_admin_link("return", Return, ret.pk),),
        )
