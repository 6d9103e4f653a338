"""Typed errors for calls to DR: one class per way a call can go wrong, all carrying DR's details."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: 409 codes that mean the effect we asked for already holds at DR for the whole request:
#: - `order_fulfilled`: DR's page order-management/informing-digital-river-of-a-fulfillment.md (a 409
#:   to POST /fulfillments);
#: - `order_already_complete` ("The specified orderId is already complete"): the error-code table of
#:   DR's OpenAPI file (`.gitbook/assets/2021-12-13.json`, info.description, "Error codes"), which
#:   names no status for it; a conflict is where it can come from;
#: - the others are those DR's own Salesforce connector handles.
ALREADY_DONE_CODES = frozenset({"order_fulfilled", "order_already_complete", "order_complete", "order_cancelled"})
#: 409 codes that settle one line of a request, the one the error names (DR's Salesforce connector
#: expects one such error per answer): the other lines are still owed and must be sent again.
LINE_SETTLED_CODES = frozenset({"item_fulfilled", "item_cancelled"})


@dataclass(frozen=True)
class ErrorDetail:
    code: str
    parameter: str
    message: str

    def __str__(self) -> str:
        where = f" ({self.parameter})" if self.parameter else ""
        return f"{self.code}{where}: {self.message}" if self.message else f"{self.code}{where}"


class DigitalRiverError(Exception):
    """Base class. ``transient`` says whether trying again later may succeed."""

    transient = False
    #: True when the request may have reached DR and had its effect although we got no success.
    effect_uncertain = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str = "",
        errors: tuple[ErrorDetail, ...] = (),
        request_id: str = "",
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.errors = errors
        self.request_id = request_id
        self.method = method
        self.path = path

    @property
    def codes(self) -> list[str]:
        return [error.code for error in self.errors if error.code]

    @property
    def first_code(self) -> str:
        codes = self.codes
        return codes[0] if codes else (self.error_type or "")

    def __str__(self) -> str:
        status = f"{self.status} " if self.status else ""
        return f"{self.method} {self.path}: {status}{self.message}".strip()


class ApiError(DigitalRiverError):
    """DR answered with an error status. ``retry_after``: seconds DR asked us to wait, if it said."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class BadRequest(ApiError):
    pass


class AuthenticationError(ApiError):
    """401 or 403: the secret key is wrong, or it may not do this."""


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    @property
    def already_done(self) -> bool:
        return bool(self.codes) and all(code in ALREADY_DONE_CODES for code in self.codes)

    def settled_lines(self, item_ids: list[str]) -> dict[str, str]:
        """{item id: code} for the lines of a request (``item_ids``, in its order) that the 409's
        line-level codes name, by position (``items[0].itemId``) or by id (in the parameter or
        message); empty unless every error is such a code and names a line of the request."""
        named = {}
        for error in self.errors:
            if error.code not in LINE_SETTLED_CODES:
                return {}
            item_id = _item_named(error, item_ids)
            if item_id is None:
                return {}
            named[item_id] = error.code
        return named


class RateLimited(ApiError):
    transient = True


class RequestTimeout(ApiError):
    """408: DR gave up waiting for the request; it may or may not have been applied."""

    transient = True
    effect_uncertain = True


class ServerError(ApiError):
    transient = True
    effect_uncertain = True


class TransportError(DigitalRiverError):
    """No answer from DR."""

    transient = True


class ConnectionFailed(TransportError):
    """The connection failed. If it could not be made, the request never reached DR; if it broke
    after the request went out (reset, dropped, a cut-off answer), DR may have acted on it."""

    def __init__(self, *args: Any, reached_server: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.effect_uncertain = reached_server


class Timeout(TransportError):
    """A connect timeout never reached DR; a read timeout may have had its effect."""

    def __init__(self, *args: Any, reached_server: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.effect_uncertain = reached_server


def _item_named(error: ErrorDetail, item_ids: list[str]) -> str | None:
    position = re.search(r"items\[(\d+)\]", error.parameter or "")
    if position and int(position.group(1)) < len(item_ids):
        return item_ids[int(position.group(1))]
    mentioned = [item_id for item_id in item_ids if item_id and item_id in f"{error.parameter} {error.message}"]
    if len(mentioned) == 1:
        return mentioned[0]
    return item_ids[0] if len(item_ids) == 1 else None


def error_for_status(status: int) -> type[ApiError]:
    if status == 400:
        return BadRequest
    if status in (401, 403):
        return AuthenticationError
    if status == 404:
        return NotFound
    if status == 408:
        return RequestTimeout
    if status == 409:
        return Conflict
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return ApiError
