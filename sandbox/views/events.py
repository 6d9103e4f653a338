"""`/events` and `/webhooks`."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from ..errors import Errors, invalid, not_found
from ..ids import uuid_id
from ..models import Delivery, Event, Webhook
from .base import Answer, endpoint, json_body, paginate, query_list

WEBHOOK_FIELDS = ("types", "address", "apiVersion", "enabled")


#: DR keeps events for 30 days.
EVENT_RETENTION = timedelta(days=30)
#: `types` takes "an array of fewer than 20 event types" (DR's API reference, List events).
MOST_TYPES = 19


def list_events(request: HttpRequest) -> Answer:
    queryset = Event.objects.filter(created_time__gte=timezone.now() - EVENT_RETENTION)
    types = query_list(request, "types") + query_list(request, "type")
    if len(query_list(request, "types")) > MOST_TYPES:
        raise invalid("types", f"'types' takes fewer than {MOST_TYPES + 1} event types.")
    if types:
        condition = Q()
        for wanted in types:
            # `order.*` selects every order event, as DR's type filter does.
            condition |= Q(type__startswith=wanted[:-1]) if wanted.endswith("*") else Q(type=wanted)
        queryset = queryset.filter(condition)
    return 200, paginate(request, queryset)


def get_event(request: HttpRequest, event_id: str) -> Answer:
    event = Event.objects.filter(dr_id=event_id).first()
    if event is None:
        raise not_found("id", event_id)
    return 200, event.as_dr()


def _validate_webhook(body: dict, *, partial: bool) -> dict:
    errors = Errors()
    for key in body:
        if key not in WEBHOOK_FIELDS:
            errors.add("unknown_parameter", key, f"'{key}' is not a known parameter.")
    if "types" in body or not partial:
        types = body.get("types")
        if not types:
            errors.missing("types")
        elif not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            errors.invalid("types", "'types' must be a list of event types.")
    if "address" in body or not partial:
        address = body.get("address")
        if not address:
            errors.missing("address")
        elif not isinstance(address, str) or not address.startswith(("http://", "https://")):
            errors.invalid("address", "'address' must be an http(s) URL.")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        errors.invalid("enabled", "'enabled' must be true or false.")
    if "apiVersion" in body and not isinstance(body["apiVersion"], str):
        errors.invalid("apiVersion", "'apiVersion' must be a string such as 2021-12-13.")
    errors.raise_if_any()
    return body


def list_webhooks(request: HttpRequest) -> Answer:
    return 200, paginate(request, Webhook.objects.all())


def create_webhook(request: HttpRequest) -> Answer:
    body = _validate_webhook(json_body(request), partial=False)
    webhook = Webhook.objects.create(
        dr_id=uuid_id(),
        address=body["address"],
        types=body["types"],
        api_version=body.get("apiVersion", ""),
        enabled=body.get("enabled", True),
    )
    return 201, webhook.as_dr()


def get_webhook(request: HttpRequest, webhook_id: str) -> Answer:
    webhook = Webhook.objects.filter(dr_id=webhook_id).first()
    if webhook is None:
        raise not_found("id", webhook_id)
    return 200, webhook.as_dr()


def update_webhook(request: HttpRequest, webhook_id: str) -> Answer:
    body = _validate_webhook(json_body(request), partial=True)
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().filter(dr_id=webhook_id).first()
        if webhook is None:
            raise not_found("id", webhook_id)
        webhook.address = body.get("address", webhook.address)
        webhook.types = body.get("types", webhook.types)
        webhook.api_version = body.get("apiVersion", webhook.api_version)
        webhook.enabled = body.get("enabled", webhook.enabled)
        webhook.updated_time = timezone.now()
        webhook.save()
    return 200, webhook.as_dr()


def delete_webhook(request: HttpRequest, webhook_id: str) -> Answer:
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().filter(dr_id=webhook_id).first()
        if webhook is None:
            raise not_found("id", webhook_id)
        # Its log stays; what it was still owed is never sent.
        Delivery.objects.filter(webhook=webhook, state=Delivery.State.PENDING).update(
            state=Delivery.State.FAILED, last_error="webhook deleted"
        )
        webhook.delete()
    return 204, None


events = endpoint(get=list_events)
event = endpoint(get=get_event)
webhooks = endpoint(get=list_webhooks, post=create_webhook)
webhook = endpoint(get=get_webhook, post=update_webhook, patch=update_webhook, delete=delete_webhook)
