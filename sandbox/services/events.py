"""Emitting events: stored for `GET /events` and queued for delivery in the same transaction."""

import random
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..ids import uuid_id
from ..models import Delivery, Event, Webhook
from ..timefmt import dr_time
from ..types import JSONObject
from .network import network_settings

#: The version DR stamps on events when the account has no pinned version (the notes' newest default).
DEFAULT_EVENT_VERSION = "2021-12-13"


def event_emit(*, type: str, obj: JSONObject, previous: JSONObject | None = None, order_id: str = "") -> Event:
    """Store an event and one pending delivery per destination; the delivery loop sends it later."""
    now = timezone.now()
    webhooks = list(Webhook.objects.all())
    targets: list[tuple[Webhook | None, str]] = [
        (hook, hook.address) for hook in webhooks if hook.enabled and hook.wants(type)
    ]
    if not webhooks and settings.SANDBOX_DEFAULT_WEBHOOK_URL:
        targets = [(None, settings.SANDBOX_DEFAULT_WEBHOOK_URL)]
    envelope: JSONObject = {
        "id": uuid_id(),
        "type": type,
        "data": {"object": obj, "previousAttributes": previous or {}},
        "liveMode": False,
        "createdTime": dr_time(now),
        "digitalriverVersion": settings.DR_API_VERSION or DEFAULT_EVENT_VERSION,
        "webhookIds": [hook.dr_id for hook, _ in targets if hook is not None],
    }
    event = Event.objects.create(
        dr_id=envelope["id"], type=type, order_id=order_id, envelope=envelope, created_time=now
    )
    net = network_settings()
    for hook, address in targets:
        delayed = net.delay_rate and random.random() < net.delay_rate
        Delivery.objects.create(
            event=event,
            webhook=hook,
            address=address,
            next_attempt_at=now + timedelta(seconds=net.delay_seconds) if delayed else now,
            created_time=now,
        )
    return event
