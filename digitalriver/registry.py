"""Where apps plug meaning into the transport: event handlers and instruction performers.

Apps register in ``AppConfig.ready()``. The integration layer looks them up by event type or
instruction kind and knows nothing else about them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.types import JSONObject

if TYPE_CHECKING:
    from .client import DigitalRiverClient
    from .models import Instruction, WebhookEvent

EventHandler = Callable[["WebhookEvent"], None]

_event_handlers: dict[str, EventHandler] = {}
_performers: dict[str, Performer] = {}


class RegistryError(Exception):
    pass


class UnusableEvent(Exception):
    """A handler's answer to an event whose object cannot be applied as it stands (a shipment of no
    units, an item the order does not have): nothing is written, and the event is kept as failed
    with this reason for an operator, who can replay it once DR's data makes sense."""


def register_event_handler(event_type: str, handler: EventHandler) -> None:
    existing = _event_handlers.get(event_type)
    if existing is not None and existing is not handler:
        raise RegistryError(f"{event_type!r} already has a handler: {existing.__qualname__}")
    _event_handlers[event_type] = handler


def event_handler(*event_types: str) -> Callable[[EventHandler], EventHandler]:
    """Decorator form of register_event_handler."""

    def decorate(handler: EventHandler) -> EventHandler:
        for event_type in event_types:
            register_event_handler(event_type, handler)
        return handler

    return decorate


def unregister_event_handler(event_type: str) -> None:
    _event_handlers.pop(event_type, None)


def get_event_handler(event_type: str) -> EventHandler | None:
    return _event_handlers.get(event_type)


def handled_event_types() -> list[str]:
    return sorted(_event_handlers)


class Performer(ABC):
    """Sends one kind of instruction to DR.

    ``perform`` makes the call and returns DR's answer; it raises the client's errors unchanged.
    ``find_existing_effect`` is asked before a resend after an ambiguous failure, since DR has no
    idempotency key: return DR's record of the effect if it already happened, else None.
    ``on_done`` and ``on_failed`` record the outcome in our own tables; they run inside the
    transaction that moves the instruction (``on_done`` just before the row is marked done, with
    DR's answer; ``on_failed`` just after it is marked failed), each in a savepoint, and must do
    no I/O. If ``on_done`` raises, its writes are undone and the instruction ends failed with DR's
    answer kept and its effect marked uncertain, so that a retry finds the effect and records it
    again instead of sending twice.
    """

    kind: str = ""
    #: 409 codes that mean the effect already holds at DR, beyond the ones every kind shares.
    already_done_codes: frozenset[str] = frozenset()

    @abstractmethod
    def perform(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject: ...

    def find_existing_effect(self, instruction: Instruction, client: DigitalRiverClient) -> JSONObject | None:
        return None

    def on_done(self, instruction: Instruction, result: JSONObject) -> None:
        return None

    def on_failed(self, instruction: Instruction) -> None:
        return None


def register_performer(performer: Performer) -> None:
    if not performer.kind:
        raise RegistryError(f"{type(performer).__qualname__} has no kind")
    existing = _performers.get(performer.kind)
    if existing is not None and type(existing) is not type(performer):
        raise RegistryError(f"{performer.kind!r} already has a performer: {type(existing).__qualname__}")
    _performers[performer.kind] = performer


def unregister_performer(kind: str) -> None:
    _performers.pop(kind, None)


def get_performer(kind: str) -> Performer | None:
    return _performers.get(kind)
