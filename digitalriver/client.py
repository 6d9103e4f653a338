"""The DR API client: one pooled session, typed errors, retries of safe calls, a rate limit, a call log.

POST is never retried here: DR has no idempotency key, so whether to send a POST again is the
outbox's decision, made after asking DR whether the first one took effect.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.db import storable_data, storable_text
from core.redaction import redact_data, redact_text
from core.types import JSONObject

from . import errors, metrics
from .models import ApiCall
from .ratelimit import Limiter, RateLimiter, make_limiter

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "PUT", "DELETE"})
# A read for a page being rendered: a person would rather see "DR did not answer" than wait.
INTERACTIVE_TIMEOUT_SECONDS = 3.0

_call_subject: contextvars.ContextVar[str] = contextvars.ContextVar("dr_call_subject", default="")
_last_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("dr_last_request_id", default="")
_held_calls: contextvars.ContextVar[list[ApiCall] | None] = contextvars.ContextVar("dr_held_calls", default=None)


def last_request_id() -> str:
    """The x-dr-requestid of the last answer DR gave in this thread."""
    return _last_request_id.get()


def forget_last_request_id() -> None:
    """Start a unit of work (an outbox attempt) with no request id left behind by an earlier one."""
    _last_request_id.set("")


@contextlib.contextmanager
def calls_about(subject: str) -> Iterator[None]:
    """Tag every call made inside the block with a subject ("order:…"), for the order timeline."""
    token = _call_subject.set(subject)
    try:
        yield
    finally:
        _call_subject.reset(token)


@contextlib.contextmanager
def calls_held() -> Iterator[list[ApiCall]]:
    """Keep the call log rows of the calls made inside the block in the yielded list instead of
    writing each in a transaction of its own: an outbox attempt writes them with its outcome, one
    commit instead of two per call (issue 14). The caller must write them (``calls_write``)."""
    held: list[ApiCall] = []
    token = _held_calls.set(held)
    try:
        yield held
    finally:
        _held_calls.reset(token)


def calls_write(calls: list[ApiCall], *, in_callers_transaction: bool = False) -> None:
    """Write call log rows held by ``calls_held``; a failure is logged, never raised, so that the
    log can never cost the outcome it sits beside.

    ``in_callers_transaction``: an outbox attempt writes its calls in its outcome's transaction
    without the savepoint that would keep a failed insert from breaking it, two round trips per
    attempt (issue 14). A row is made storable when it is built (``_storable``: cut to its column,
    no NUL or lone surrogate), so only a failing database can refuse it there, which fails the outcome's
    transaction anyway; the sender then writes the rows again on their own (``outbox._deliver``).
    """
    if not calls:
        return
    if in_callers_transaction:
        _calls_insert(calls)
        return
    # Inside a transaction a savepoint keeps a failed insert from breaking the caller's; outside
    # one, a single row is one statement in autocommit (bulk_create would add BEGIN and COMMIT).
    connection = transaction.get_connection()
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            _calls_insert(calls)
    except DatabaseError:
        logger.exception("could not write the call log of %d calls", len(calls))


def _calls_insert(calls: list[ApiCall]) -> None:
    for call in calls:  # new rows each time: a rolled-back insert left its id on the object
        call.pk = None
        call._state.adding = True
    if len(calls) == 1:
        calls[0].save(force_insert=True)
    else:
        ApiCall.objects.bulk_create(calls)


def _storable(text: str, length: int | None) -> str:
    """``text`` as a text column takes it whatever DR sent: at most ``length`` characters, and none
    that a database refuses (``core.db.storable_text``)."""
    return storable_text(text)[:length]


@dataclass
class Response:
    status: int
    data: Any
    request_id: str
    headers: dict[str, str]


@dataclass
class Download:
    """A file's content as DR sends it (``GET /files/{id}/content``), read chunk by chunk while it
    arrives: never held whole in memory, never written to disk. Read ``chunks()`` once; it closes
    the connection when done (or call ``close()`` to give up)."""

    content_type: str
    length: int | None
    request_id: str
    raw: requests.Response
    chunk_size: int = 64 * 1024

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.raw.iter_content(chunk_size=self.chunk_size)
        finally:
            self.raw.close()

    def close(self) -> None:
        self.raw.close()


class DigitalRiverClient:
    def __init__(
        self,
        *,
        base_url: str,
        secret_key: str,
        api_version: str = "",
        timeout: float = 10.0,
        rate_limit: float = 25.0,
        max_retries: int = 3,
        retry_after_cap: float = 30.0,
        application_id: str = "",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        limiter: Limiter | None = None,
    ) -> None:
        """``limiter``: the deployment's (see ratelimit.make_limiter); by default one of this client's own."""
        if not secret_key:
            raise ImproperlyConfigured("DR_SECRET_KEY is not set")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = min(timeout, 5.0)
        self.max_retries = max_retries
        self.retry_after_cap = retry_after_cap
        self.limiter: Limiter = limiter or RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self._sleep = sleep
        self._secret_key = secret_key
        self.session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update(
            {
                "Authorization": f"Bearer {secret_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
        )
        if api_version:
            self.session.headers["DigitalRiver-Version"] = api_version
        if application_id:
            self.session.headers["upstream-application-id"] = application_id

    # --- verbs -----------------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, *, while_a_person_waits: bool = False) -> Any:
        """``while_a_person_waits``: a page is rendering, so fail fast (no retries, a short timeout)."""
        if while_a_person_waits:
            return self.request("GET", path, params=params, retries=0, timeout=INTERACTIVE_TIMEOUT_SECONDS).data
        return self.request("GET", path, params=params).data

    def put(self, path: str, body: JSONObject) -> Any:
        return self.request("PUT", path, json_body=body).data

    def post(self, path: str, body: JSONObject) -> Any:
        return self.request("POST", path, json_body=body).data

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).data

    def download(self, path: str, *, accept: str = "application/pdf, */*", retries: int | None = None) -> Download:
        """Stream a file's content (a PDF) with our key: ``requests`` reads it as it arrives
        (``stream=True``), so the caller passes it on without keeping it. The call log records the
        call and the content's type and size, never the content. A failed answer raises the typed
        error like every other call; a transient failure before any byte arrived is tried again, once
        by default (a person is waiting)."""
        retries = min(1, self.max_retries) if retries is None else retries
        attempt = 0
        while True:
            try:
                return self._open_stream_once(path, accept)
            except errors.DigitalRiverError as exc:
                delay = self._retry_delay(exc, attempt) if exc.transient and attempt < retries else None
                if delay is None:
                    raise
                attempt += 1
                self._sleep(delay)

    def _open_stream_once(self, path: str, accept: str) -> Download:
        url = f"{self.base_url}/{path.lstrip('/')}"
        self.limiter.acquire()
        _last_request_id.set("")
        started_at = timezone.now()
        started = time.monotonic()
        timeout = (min(self.connect_timeout, self.timeout), self.timeout)
        try:
            raw = self.session.get(url, headers={"Accept": accept}, stream=True, timeout=timeout)
        except requests.exceptions.RequestException as exc:
            error = _transport_error(exc, "GET", path, self.timeout, self.connect_timeout)
            self._log("GET", path, None, None, started_at, started, error=error)
            raise error from exc
        request_id = raw.headers.get("x-dr-requestid", "")
        _last_request_id.set(request_id)
        if raw.status_code >= 400:
            # An error is a small JSON body: read it whole, like any other answer.
            api_error = _api_error(raw, _json_or_text(raw), request_id, "GET", path)
            self._pause_if_asked(api_error)
            self._log("GET", path, None, None, started_at, started, raw=raw, error=api_error)
            raw.close()
            raise api_error
        length = raw.headers.get("Content-Length", "")
        content_type = raw.headers.get("Content-Type", "application/octet-stream")
        kept = f"[{content_type}, {length or 'unknown'} bytes, streamed: not kept]"
        self._log("GET", path, None, None, started_at, started, raw=raw, response_body=kept)
        return Download(
            content_type=content_type,
            length=int(length) if length.isdigit() else None,
            request_id=request_id,
            raw=raw,
        )

    def paginate(
        self, path: str, params: dict[str, Any] | None = None, *, page_size: int = 100
    ) -> Iterator[JSONObject]:
        """Every object of a list endpoint, following hasMore/startingAfter page by page."""
        query = dict(params or {})
        query.setdefault("limit", page_size)
        while True:
            page = self.get(path, query)
            items = page.get("data", []) if isinstance(page, dict) else []
            yield from items
            if not (isinstance(page, dict) and page.get("hasMore")) or not items:
                return
            query["startingAfter"] = items[-1]["id"]

    # --- the one way out -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: JSONObject | None = None,
        retries: int | None = None,
        timeout: float | None = None,
    ) -> Response:
        method = method.upper()
        if method not in SAFE_METHODS:
            retries = 0
        elif retries is None:
            retries = self.max_retries
        attempt = 0
        while True:
            try:
                return self._send_once(method, path, params, json_body, timeout or self.timeout)
            except errors.DigitalRiverError as exc:
                if not exc.transient or attempt >= retries:
                    raise
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                attempt += 1
                logger.info("retrying %s %s in %.2fs after %s", method, path, delay, exc)
                self._sleep(delay)

    def _retry_delay(self, exc: errors.DigitalRiverError, attempt: int) -> float | None:
        backoff = min(8.0, 0.25 * 2**attempt)
        delay = backoff / 2 + random.uniform(0, backoff / 2)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.retry_after_cap:
                return None  # DR asks for a long pause: leave it to the caller's schedule.
            delay = max(delay, retry_after)
        return delay

    def _pause_if_asked(self, error: errors.ApiError) -> None:
        """A 429's ``Retry-After`` holds back every sender sharing the limiter, not only this call.

        Capped at ``retry_after_cap``: a longer wait is left to the outbox's schedule rather than
        stalling every call (a page being rendered too) for as long as DR asked."""
        if error.status == 429 and error.retry_after:
            self.limiter.pause(min(error.retry_after, self.retry_after_cap))

    def _send_once(
        self, method: str, path: str, params: dict[str, Any] | None, json_body: JSONObject | None, timeout: float
    ) -> Response:
        url = f"{self.base_url}/{path.lstrip('/')}"
        body_text = json.dumps(json_body, separators=(",", ":")) if json_body is not None else None
        self.limiter.acquire()
        _last_request_id.set("")
        started_at = timezone.now()
        started = time.monotonic()
        error: errors.DigitalRiverError | None
        try:
            raw = self.session.request(
                method, url, params=params, data=body_text, timeout=(min(self.connect_timeout, timeout), timeout)
            )
        except requests.exceptions.ConnectTimeout as exc:
            error = errors.Timeout(
                f"no connection within {min(self.connect_timeout, timeout)}s",
                reached_server=False,
                method=method,
                path=path,
            )
            self._log(method, path, params, body_text, started_at, started, error=error)
            raise error from exc
        except requests.exceptions.Timeout as exc:
            error = errors.Timeout(f"no answer within {timeout}s", method=method, path=path)
            self._log(method, path, params, body_text, started_at, started, error=error)
            raise error from exc
        except requests.exceptions.RequestException as exc:
            reached = _may_have_reached_server(exc)
            what = "connection lost before DR answered" if reached else "connection failed"
            error = errors.ConnectionFailed(
                f"{what}: {type(exc).__name__}", reached_server=reached, method=method, path=path
            )
            self._log(method, path, params, body_text, started_at, started, error=error)
            raise error from exc

        request_id = raw.headers.get("x-dr-requestid", "")
        _last_request_id.set(request_id)
        data = _json_or_text(raw)
        error = None if raw.status_code < 400 else _api_error(raw, data, request_id, method, path)
        if error is not None:
            self._pause_if_asked(error)
        self._log(method, path, params, body_text, started_at, started, raw=raw, error=error)
        if error is not None:
            raise error
        return Response(status=raw.status_code, data=data, request_id=request_id, headers=dict(raw.headers))

    def _log(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body_text: str | None,
        started_at: datetime,
        started: float,
        *,
        raw: requests.Response | None = None,
        error: errors.DigitalRiverError | None = None,
        response_body: str | None = None,
    ) -> None:
        """``response_body`` stands in for the answer's body when reading it would consume a stream."""
        limit = settings.DR_API_CALL_BODY_LIMIT
        secrets = (self._secret_key,)
        elapsed = time.monotonic() - started
        metrics.call_observe(method, raw.status_code if raw is not None else None, elapsed)
        call = ApiCall(
            method=method,
            path=_storable(redact_text(path, secrets), 500),
            query=_storable(redact_text(urlencode(redact_data(params or {}), doseq=True), secrets), 1000),
            status=raw.status_code if raw is not None else None,
            duration_ms=int(elapsed * 1000),
            request_id=_storable(raw.headers.get("x-dr-requestid", ""), 100) if raw is not None else "",
            error_code=_storable(_log_code(error), 100),
            error_message=_storable(redact_text(error.message, secrets), None) if error else "",
            request_body=_storable(redact_text(body_text or "", secrets), limit),
            response_body=_storable(
                response_body
                if response_body is not None
                else redact_text(raw.text, secrets)
                if raw is not None
                else "",
                limit,
            ),
            subject=_storable(_call_subject.get(), 128),
            started_at=started_at,
        )
        held = _held_calls.get()
        if held is not None:
            held.append(call)
        else:
            calls_write([call])


def _transport_error(
    exc: requests.exceptions.RequestException, method: str, path: str, timeout: float, connect_timeout: float
) -> errors.DigitalRiverError:
    """The typed error for a call that got no answer (as ``_send_once`` says it, for the stream)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return errors.Timeout(
            f"no connection within {min(connect_timeout, timeout)}s", reached_server=False, method=method, path=path
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return errors.Timeout(f"no answer within {timeout}s", method=method, path=path)
    reached = _may_have_reached_server(exc)
    what = "connection lost before DR answered" if reached else "connection failed"
    return errors.ConnectionFailed(f"{what}: {type(exc).__name__}", reached_server=reached, method=method, path=path)


def _may_have_reached_server(exc: requests.exceptions.RequestException) -> bool:
    """Whether the request may have been sent before the failure, so a POST may have had its effect.

    With urllib3 not retrying, a connection that could not be made (refused, no DNS, TLS handshake,
    proxy) comes wrapped in ``MaxRetryError``; a connection that broke after the request went out
    comes as a bare ``ProtocolError``/``OSError``, and a cut-off answer as a decoding error.
    """
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        return not isinstance(reason, urllib3.exceptions.MaxRetryError)
    return isinstance(
        exc,
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | requests.exceptions.TooManyRedirects,
    )


def _log_code(error: errors.DigitalRiverError | None) -> str:
    if error is None:
        return ""
    if error.first_code:
        return error.first_code
    if isinstance(error, errors.Timeout):
        return "timeout"
    if isinstance(error, errors.ConnectionFailed):
        return "connection_failed"
    return ""


def _json_or_text(raw: requests.Response) -> Any:
    """DR's answer, parsed, with what no database column can store replaced (``storable_data``):
    every answer is kept somewhere (the call log, an instruction's result and error, a mirrored
    order), and a NUL or a lone surrogate escape must not fail the transaction that records it."""
    if not raw.content:
        return None
    try:
        return storable_data(raw.json())
    except ValueError:
        return storable_text(raw.text)


def _api_error(raw: requests.Response, data: Any, request_id: str, method: str, path: str) -> errors.ApiError:
    error_type = ""
    details: tuple[errors.ErrorDetail, ...] = ()
    if isinstance(data, dict):
        error_type = str(data.get("type") or "")
        details = tuple(
            errors.ErrorDetail(
                code=str(item.get("code") or ""),
                parameter=str(item.get("parameter") or ""),
                # DR quotes parameters back: the message travels to logs, the outbox and the admin.
                message=redact_text(str(item.get("message") or "")),
            )
            for item in data.get("errors") or []
            if isinstance(item, dict)
        )
    message = "; ".join(str(detail) for detail in details) or error_type or raw.reason or f"HTTP {raw.status_code}"
    kwargs: dict[str, Any] = {
        "status": raw.status_code,
        "error_type": error_type,
        "errors": details,
        "request_id": request_id,
        "method": method,
        "path": path,
    }
    kwargs["retry_after"] = _retry_after_seconds(raw.headers.get("Retry-After"))
    return errors.error_for_status(raw.status_code)(message, **kwargs)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: either a number of seconds or an HTTP date."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


_client: DigitalRiverClient | None = None
_client_lock = threading.Lock()


def get_client() -> DigitalRiverClient:
    """The process-wide client built from settings (one pooled session; the deployment's rate limit)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = DigitalRiverClient(
                base_url=settings.DR_API_BASE_URL,
                secret_key=settings.DR_SECRET_KEY,
                api_version=settings.DR_API_VERSION,
                timeout=settings.DR_TIMEOUT_SECONDS,
                rate_limit=settings.DR_RATE_LIMIT_PER_SECOND,
                limiter=make_limiter(
                    settings.DR_RATE_LIMIT_PER_SECOND,
                    secret_key=settings.DR_SECRET_KEY,
                    broker_url=settings.CELERY_BROKER_URL,
                ),
                max_retries=settings.DR_CLIENT_MAX_RETRIES,
                retry_after_cap=settings.DR_CLIENT_RETRY_AFTER_CAP_SECONDS,
                application_id=settings.DR_UPSTREAM_APPLICATION_ID,
            )
        return _client


def reset_client() -> None:
    """Forget the shared client so the next get_client() reads settings again (tests, reconfiguration)."""
    global _client
    with _client_lock:
        _client = None
