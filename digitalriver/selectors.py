from collections.abc import Sequence

from django.db.models import Q, QuerySet

from .models import WebhookEvent


def webhook_events_matching(
    *, failed_only: bool = False, event_type: str | None = None, ids: Sequence[str] = ()
) -> QuerySet[WebhookEvent]:
    events = WebhookEvent.objects.all()
    if failed_only:
        events = events.filter(state=WebhookEvent.State.FAILED)
    if event_type:
        events = events.filter(type=event_type)
    if ids:
        local = [int(value) for value in ids if str(value).isascii() and str(value).isdecimal()]
        events = events.filter(Q(dr_event_id__in=ids) | Q(pk__in=local))
    return events.order_by("received_at", "pk")
