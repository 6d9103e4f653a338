"""The integration's big tables for bench/admin_pages.py, filled set-based in SQL (PostgreSQL only).

A big merchant's year: ``events`` webhook events (about ten per order), an instruction per five
events with one attempt each (a tenth needed a second try) and one call to DR per attempt. Rows are
numbered in time order over the last ``SPAN`` so that ids grow with ``received_at`` as they do in
production, and every choice (type, state, order) is a hash of the row number, so two runs build
the same tables and the benchmark can name an order or an event it knows exists.

The generated rows are written in one transaction with the tables' secondary indexes and
constraints dropped and rebuilt afterwards (a sort per index instead of ten million random inserts
into each).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

SPAN = timedelta(days=365)
FRESH_FOR = timedelta(hours=12)  # tables older than this are filled again
CHUNK = 1_000_000
INSTRUCTIONS_PER_EVENT = 5  # one instruction for every five events
# One event in this many is about the big order, whose page shows a long timeline.
BIG_ORDER_EVERY = 2_000
FIRST_ORDER_NUMBER = 100_000_000_000  # bench/admin_pages.py numbers its orders from here

# DR's event types by their share per 1,000 events of an order's life: accepted, sent to the
# warehouse, shipped and captured, invoiced and complete; refunds, cancellations and failures rare.
EVENT_TYPES = {
    "order.accepted": 100,
    "fulfillment_order.pending": 100,
    "fulfillment_order.shipped": 120,
    "fulfillment.created": 120,
    "order.charge.capture.complete": 115,
    "order.fulfilled": 90,
    "order.complete": 90,
    "order.invoice.created": 90,
    "order.pending_payment": 40,
    "order.review_opened": 6,
    "order.cancelled": 5,
    "fulfillment_order.cancelled": 5,
    "fulfillment_order.backordered": 5,
    "order.charge.cancel.complete": 4,
    "refund.pending": 3,
    "refund.complete": 3,
    "order.credit_memo.created": 2,
    "order.charge.capture.failed": 1,
    "order.chargeback": 1,
    # Types DR sends that no handler takes (kept as ignored): catalog changes, expired refunds.
    "sku.updated": 20,
    "refund.expired": 1,
}
# Instruction kinds per 1,000, with the call each one makes.
INSTRUCTION_KINDS = {
    "fulfillment.post_fulfillment": (450, "POST", "/fulfillments"),
    "fulfillment.create_fulfillment_order": (350, "POST", "/fulfillment-orders"),
    "catalog.sku.push": (100, "PUT", "/skus/"),
    "commerce.create_refund": (50, "POST", "/refunds"),
    "fulfillment.request_cancellation": (30, "POST", "/fulfillment-cancellations"),
    "fulfillment.create_return": (20, "POST", "/returns"),
}
HEADERS = (
    '{"Content-Type": "application/json; charset=utf-8", "Content-Length": "412",'
    ' "User-Agent": "DigitalRiver-Webhooks/1.0", "Digitalriver-Signature": "[redacted]"}'
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/digitalriver/services/inbox.py", line 131, in webhook_event_process\n'
    "    handler(event)\n"
    '  File "/app/fulfillment/handlers.py", line 88, in on_fulfillment_order_shipped\n'
    '    raise UnusableEvent(f"item {item_id} is not on the order")\n'
    "digitalriver.registry.UnusableEvent: an item of the shipment is not on the order\n"
)

# Each query draws a row's values in nested subqueries, each ending in OFFSET 0: without it PostgreSQL
# flattens them and computes a value again everywhere it is used (the type, from an array of a
# thousand, a dozen times per row), which made the events four times slower to build.
#
# A row's dice: a stable pseudo-random number in [0, 10000) for each of its choices.
DICE = "abs(hashint8extended(n, {seed})) %% 10000"

EVENTS_SQL = f"""
INSERT INTO digitalriver_webhookevent (
    dr_event_id, type, state, source, order_id, live_mode, dr_created_at, received_at, processed_at,
    body, payload, headers, attempts, lease_expires_at, error, traceback)
SELECT event_id, type, state, source, order_id, true, at - interval '2 seconds', at,
    CASE WHEN state IN ('processed', 'ignored') THEN at + interval '180 milliseconds' END,
    payload::text, payload, %(headers)s::jsonb,
    CASE state WHEN 'received' THEN 0 WHEN 'failed' THEN 1 + n %% 5 ELSE 1 END,
    NULL,
    CASE WHEN state = 'failed' THEN 'UnusableEvent: item ' || order_id || '01 is not on the order' ELSE '' END,
    CASE WHEN state = 'failed' THEN %(traceback)s ELSE '' END
FROM (
    SELECT *, jsonb_build_object(
        'id', event_id, 'type', type, 'liveMode', true, 'createdTime', created,
        'digitalriverVersion', '2021-12-13', 'webhookIds', '[]'::jsonb,
        'data', jsonb_build_object(
            'previousAttributes', '{{}}'::jsonb,
            'object', jsonb_build_object(
                'id', coalesce(nullif(order_id, ''), 'SKU-' || n %% 5000), 'upstreamId', 'WEB-' || order_id,
                'state', split_part(type, '.', 2),
                'currency', 'USD', 'totalAmount', 70.17, 'createdTime', created, 'liveMode', true))
    ) AS payload
    FROM (
        SELECT *,
            CASE WHEN type LIKE 'sku.%%' THEN ''
                WHEN n %% {BIG_ORDER_EVERY} = 0 THEN %(big)s
                ELSE ({FIRST_ORDER_NUMBER} + abs(hashint8extended(n, 2)) %% %(orders)s)::text
            END AS order_id,
            to_char((at - interval '2 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created,
            CASE
                WHEN type = ANY(%(unhandled)s::text[]) THEN 'ignored'
                WHEN at > %(now)s::timestamptz - interval '2 minutes' OR dice < 10 THEN 'received'
                WHEN dice < 110 THEN 'failed'
                ELSE 'processed'
            END AS state,
            CASE WHEN dice %% 50 = 0 THEN 'polled' ELSE 'webhook' END AS source
        FROM (
            SELECT n,
                md5('evt' || n)::uuid::text AS event_id,
                (%(types)s::text[])[1 + {DICE.format(seed=1)} %% cardinality(%(types)s::text[])] AS type,
                %(now)s::timestamptz - (%(total)s - n) * %(step_us)s * interval '1 microsecond' AS at,
                {DICE.format(seed=3)} AS dice
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
            OFFSET 0
        ) typed
        OFFSET 0
    ) stated
    OFFSET 0
) built
"""

INSTRUCTIONS_SQL = f"""
INSERT INTO digitalriver_instruction (
    kind, subject, payload, state, attempts, attempts_before_retry, next_attempt_at, lease_expires_at,
    claim_token, effect_uncertain, last_error, last_error_code, result, created_at, updated_at, finished_at)
SELECT kind, subject, payload, state, attempts, 0,
    CASE WHEN state = 'retry_wait' THEN at + interval '5 minutes' ELSE at END,
    NULL, NULL, false,
    CASE state WHEN 'failed' THEN 'DR refused: quantity_too_large' WHEN 'done' THEN ''
        ELSE 'HTTP 503: service_unavailable' END,
    CASE state WHEN 'failed' THEN 'quantity_too_large' WHEN 'done' THEN '' ELSE 'service_unavailable' END,
    CASE WHEN state = 'done' THEN jsonb_build_object('id', md5('res' || n), 'state', 'created', 'liveMode', true) END,
    at, at + attempts * interval '30 seconds',
    CASE WHEN state IN ('done', 'failed', 'cancelled') THEN at + attempts * interval '30 seconds' END
FROM (
    SELECT *,
        CASE WHEN kind = 'catalog.sku.push' THEN 'sku:SKU-' || (n %% 5000) ELSE 'order:' || order_id END AS subject,
        jsonb_build_object(
            'upstreamId', order_id, 'currency', 'USD',
            'items', jsonb_build_array(
                jsonb_build_object('itemId', order_id || '1', 'skuId', 'SKU-1', 'quantity', 2),
                jsonb_build_object('itemId', order_id || '2', 'skuId', 'SKU-2', 'quantity', 2))
        ) AS payload,
        CASE state WHEN 'pending' THEN 0 WHEN 'failed' THEN 3 WHEN 'retry_wait' THEN 2
            ELSE 1 + (dice %% 10 = 0)::int END AS attempts
    FROM (
        SELECT *,
            CASE
                WHEN at > %(now)s::timestamptz - interval '1 minute' OR dice < 5 THEN 'pending'
                WHEN dice < 10 THEN 'retry_wait'
                WHEN dice < 60 THEN 'failed'
                WHEN dice < 110 THEN 'cancelled'
                ELSE 'done'
            END AS state
        FROM (
            SELECT n,
                (%(kinds)s::text[])[1 + {DICE.format(seed=4)} %% cardinality(%(kinds)s::text[])] AS kind,
                CASE WHEN n %% {BIG_ORDER_EVERY} = 0 THEN %(big)s
                    ELSE ({FIRST_ORDER_NUMBER} + abs(hashint8extended(n, 5)) %% %(orders)s)::text
                END AS order_id,
                %(now)s::timestamptz - (%(total)s - n) * %(step_us)s * interval '1 microsecond' AS at,
                {DICE.format(seed=6)} AS dice
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
            OFFSET 0
        ) drawn
        OFFSET 0
    ) stated
    OFFSET 0
) built
"""

# Each instruction's attempts: the last one decides (succeeded when done, refused when failed), the
# ones before it met a 503.
ATTEMPTS_SQL = """
INSERT INTO digitalriver_attempt (
    instruction_id, number, started_at, duration_ms, outcome, http_status, error_type, error_codes, message,
    request_id)
SELECT id, k, created_at + (k - 1) * interval '30 seconds' + interval '40 milliseconds', 40 + (id + k) %% 260,
    outcome,
    CASE outcome WHEN 'succeeded' THEN 201 WHEN 'rejected' THEN 409 ELSE 503 END,
    CASE outcome WHEN 'succeeded' THEN '' WHEN 'rejected' THEN 'conflict' ELSE 'service_unavailable' END,
    CASE outcome WHEN 'succeeded' THEN '[]'::jsonb WHEN 'rejected' THEN '["quantity_too_large"]'::jsonb
        ELSE '["service_unavailable"]'::jsonb END,
    CASE outcome WHEN 'succeeded' THEN '' WHEN 'rejected' THEN 'The quantity is larger than the quantity available.'
        ELSE 'The service is temporarily unavailable.' END,
    md5('req' || id || '-' || k)::uuid::text
FROM (
    SELECT i.id, i.created_at, k,
        CASE WHEN k < i.attempts THEN 'transient' WHEN i.state = 'done' THEN 'succeeded'
            WHEN i.state = 'failed' THEN 'rejected' ELSE 'transient' END AS outcome
    FROM digitalriver_instruction i CROSS JOIN LATERAL generate_series(1, i.attempts) AS k
    WHERE i.id BETWEEN %(first)s AND %(last)s
) tried
"""

# One call to DR per attempt, with the instruction's payload as the request and a short answer.
CALLS_SQL = """
INSERT INTO digitalriver_apicall (
    method, path, query, status, duration_ms, request_id, error_code, error_message, request_body,
    response_body, subject, started_at)
SELECT method, path || CASE WHEN method = 'PUT' THEN split_part(i.subject, ':', 2) ELSE '' END, '',
    a.http_status, a.duration_ms, a.request_id,
    CASE WHEN a.http_status >= 400 THEN a.error_codes ->> 0 ELSE '' END,
    CASE WHEN a.http_status >= 400 THEN a.message ELSE '' END,
    i.payload::text,
    CASE WHEN a.http_status < 400
        THEN jsonb_build_object('id', md5('res' || i.id), 'state', 'created', 'liveMode', true)::text
        ELSE jsonb_build_object('type', a.error_type, 'errors', jsonb_build_array(jsonb_build_object(
            'code', a.error_codes ->> 0, 'message', a.message)))::text
    END,
    i.subject, a.started_at
FROM digitalriver_attempt a
JOIN digitalriver_instruction i ON i.id = a.instruction_id
JOIN (SELECT unnest(%(kinds)s::text[]) AS kind, unnest(%(methods)s::text[]) AS method,
    unnest(%(paths)s::text[]) AS path) calls ON calls.kind = i.kind
WHERE a.id BETWEEN %(first)s AND %(last)s
"""

TABLES = ("digitalriver_webhookevent", "digitalriver_instruction", "digitalriver_attempt", "digitalriver_apicall")


def event_id(number: int) -> str:
    """The DR event id of generated row ``number`` (as EVENTS_SQL makes it)."""
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"evt{number}".encode()).hexdigest()))


def weighted(shares: dict[str, int]) -> list[str]:
    return [name for name, share in shares.items() for _ in range(share)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(*, events: int, orders: int, big_order: str, now: datetime) -> dict[str, int]:
    """Replace the four tables' rows with ``events`` events and the instructions, attempts and calls
    that go with them; returns the row count of each table. Does nothing when they are already there
    and fresh (``FRESH_FOR``)."""
    from django.db import connection, transaction

    from digitalriver.models import WebhookEvent
    from digitalriver.registry import get_event_handler

    # The newest generated event is received at the moment of the fill: a day later the dashboard's
    # last 24 hours would be empty, and its figures flattering.
    there = WebhookEvent.objects.filter(
        dr_event_id=event_id(events), received_at__gte=now - FRESH_FOR
    ).exists() and not (WebhookEvent.objects.filter(dr_event_id=event_id(events + 1)).exists())
    if events == 0 or there:
        return _counts()
    instructions = events // INSTRUCTIONS_PER_EVENT
    started = time.monotonic()
    common = {"now": now, "orders": orders, "big": big_order}
    kinds = weighted({kind: share for kind, (share, _, _) in INSTRUCTION_KINDS.items()})
    # One transaction: a failure leaves the tables as they were, indexes included.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        cursor.execute("SET maintenance_work_mem = '256MB'")
        with _without_secondary_indexes(cursor, "digitalriver_webhookevent"):
            _in_chunks(
                cursor,
                "events",
                EVENTS_SQL,
                events,
                **common,
                total=events,
                step_us=SPAN / timedelta(microseconds=1) / events,
                types=weighted(EVENT_TYPES),
                unhandled=[kind for kind in EVENT_TYPES if get_event_handler(kind) is None],
                headers=HEADERS,
                traceback=TRACEBACK,
            )
        with (
            _without_secondary_indexes(cursor, "digitalriver_instruction"),
            _without_secondary_indexes(cursor, "digitalriver_attempt"),
            _without_secondary_indexes(cursor, "digitalriver_apicall"),
        ):
            _in_chunks(
                cursor,
                "instructions",
                INSTRUCTIONS_SQL,
                instructions,
                **common,
                total=instructions,
                step_us=SPAN / timedelta(microseconds=1) / max(instructions, 1),
                kinds=kinds,
            )
            # Both passes go by primary key, numbered from 1 since the TRUNCATE.
            _in_chunks(cursor, "attempts", ATTEMPTS_SQL, instructions)
            _in_chunks(
                cursor,
                "calls",
                CALLS_SQL,
                _last_id(cursor, "digitalriver_attempt"),
                kinds=list(INSTRUCTION_KINDS),
                methods=[method for _, method, _ in INSTRUCTION_KINDS.values()],
                paths=[path for _, _, path in INSTRUCTION_KINDS.values()],
            )
    log(f"big tables filled in {time.monotonic() - started:.0f} s")
    return _counts()


def _counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _last_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
    return cursor.fetchone()[0]


def _in_chunks(cursor, name: str, sql: str, rows: int, **params) -> None:
    for first in range(1, rows + 1, CHUNK):
        last = min(first + CHUNK - 1, rows)
        started = time.monotonic()
        cursor.execute(sql, {**params, "first": first, "last": last})
        log(f"{name}: {last:,} of {rows:,} ({time.monotonic() - started:.0f} s)")


@contextmanager
def _without_secondary_indexes(cursor, table: str) -> Iterator[None]:
    """Drop every index and constraint of ``table`` but its primary key, and put them back after."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    for name, definition in indexes:
        started = time.monotonic()
        cursor.execute(definition)
        log(f"{table}: index {name} ({time.monotonic() - started:.0f} s)")
    for name, definition in constraints:
        started = time.monotonic()
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        log(f"{table}: constraint {name} ({time.monotonic() - started:.0f} s)")
