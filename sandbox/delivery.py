"""Delivering stored events to webhooks, from a background loop, never inside a request.

Each pass claims due deliveries under a short lease (row locks with SKIP LOCKED on PostgreSQL,
SQLite's write lock otherwise), holds no transaction during the HTTP call, logs every try, and
retries failures with exponential backoff until `max_attempts`. The bad network's delivery
settings (drop, duplicate, reorder, delay) apply here.
"""

import json
import logging
import random
import threading
import time
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from .models import Delivery, DeliveryAttempt, NetworkSettings, Webhook
from .services.network import network_settings
from .services.refunds import refunds_settle_due
from .signing import signature_header

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
LEASE = timedelta(seconds=60)
# DR expects an answer within 3000 ms and counts anything slower as a failure.
TIMEOUT_SECONDS = 3.0
BACKOFF_CAP = timedelta(hours=1)
LOOP_INTERVAL_SECONDS = 1.0

_thread_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def deliver_due(now: datetime | None = None) -> int:
    """Send every delivery due at `now` once; return how many HTTP requests were made."""
    now = now or timezone.now()
    # The bank's answers to pending refunds are the sandbox's other delayed effect: they happen here,
    # never inside the request that created the refund, and their events go out in this same pass.
    refunds_settle_due(now)
    net = network_settings()
    claimed = _claim(now)
    if net.reorder:
        random.shuffle(claimed)
    sent = 0
    with requests.Session() as session:
        for delivery in claimed:
            sent += _deliver(delivery, net, session, now)
    return sent


def _claim(now: datetime) -> list[Delivery]:
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event")
            .filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
            # A disabled webhook's deliveries wait until it is enabled again.
            # (a subquery: FOR UPDATE cannot lock the nullable side of an outer join)
            .exclude(webhook_id__in=Webhook.objects.filter(enabled=False).values("pk"))
            .order_by("next_attempt_at", "id")[:BATCH_SIZE]
        )
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(lease_expires_at=now + LEASE)
    return rows


def _deliver(delivery: Delivery, net: NetworkSettings, session: requests.Session, now: datetime) -> int:
    if net.drop_rate and random.random() < net.drop_rate:
        DeliveryAttempt.objects.create(
            delivery=delivery, event=delivery.event, address=delivery.address, note="dropped", error="dropped"
        )
        delivery.state = Delivery.State.DROPPED
        delivery.lease_expires_at = None
        delivery.save(update_fields=["state", "lease_expires_at"])
        return 0
    status, error = _post(delivery, session)
    sent = 1
    delivery.attempts += 1
    delivery.last_status = status
    delivery.last_error = error
    delivery.lease_expires_at = None
    if status is not None and 200 <= status < 300:
        delivery.state = Delivery.State.DELIVERED
        if net.duplicate_rate and random.random() < net.duplicate_rate:
            _post(delivery, session, note="duplicate")
            sent += 1
    elif delivery.attempts >= net.max_attempts:
        delivery.state = Delivery.State.FAILED
    else:
        delay = timedelta(seconds=net.backoff_seconds * 2 ** (delivery.attempts - 1) * random.uniform(0.8, 1.2))
        delivery.next_attempt_at = now + min(delay, BACKOFF_CAP)
    delivery.save()
    return sent


def _post(delivery: Delivery, session: requests.Session, note: str = "") -> tuple[int | None, str]:
    body = json.dumps(delivery.event.envelope).encode("utf-8")
    secrets = settings.DR_WEBHOOK_SECRETS
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "DigitalRiver-Sandbox/1.0",
        "DigitalRiver-Signature": signature_header(secrets[0] if secrets else "", body),
    }
    started = time.monotonic()
    status, error = None, ""
    try:
        response = session.post(delivery.address, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
        status = response.status_code
        if not 200 <= status < 300:
            error = response.text[:500]
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    DeliveryAttempt.objects.create(
        delivery=delivery,
        event=delivery.event,
        address=delivery.address,
        status_code=status,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
        note=note,
    )
    return status, error


def start_background_delivery(interval: float = LOOP_INTERVAL_SECONDS) -> threading.Thread:
    """Start the delivery loop once per process (later calls return the running thread)."""
    global _thread
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            _stop.clear()
            _thread = threading.Thread(target=_loop, args=(interval,), name="sandbox-delivery", daemon=True)
            _thread.start()
        return _thread


def stop_background_delivery(timeout: float = 10.0) -> None:
    """Stop the loop after its current pass (tests, and a clean shutdown)."""
    global _thread
    with _thread_lock:
        thread, _thread = _thread, None
        _stop.set()
    if thread is not None:
        thread.join(timeout)


def _loop(interval: float) -> None:
    while not _stop.is_set():
        sent = 0
        try:
            close_old_connections()
            sent = deliver_due()
        except Exception:
            logger.exception("sandbox delivery pass failed")
        finally:
            close_old_connections()
        if sent < BATCH_SIZE:
            _stop.wait(interval)
