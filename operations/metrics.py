"""``/metrics`` for Prometheus, behind a bearer token (``METRICS_TOKEN``; unset, the page does not exist).

The backlogs are read from the database when Prometheus scrapes, one grouped query each, so every
process answers the same whichever one is scraped. The DR client's counters (``digitalriver.metrics``)
and Python's process metrics count in the answering process only.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views import View
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from digitalriver.models import ApiCall, Instruction, WebhookEvent

# Events still to act on; processed and ignored ones are history, not backlog.
EVENT_BACKLOG = (WebhookEvent.State.RECEIVED, WebhookEvent.State.FAILED)
# Instructions not finished, and the failed ones waiting for an operator.
INSTRUCTION_BACKLOG = (
    Instruction.State.PENDING,
    Instruction.State.SENDING,
    Instruction.State.RETRY_WAIT,
    Instruction.State.FAILED,
)
INSTRUCTION_UNSENT = (Instruction.State.PENDING, Instruction.State.SENDING, Instruction.State.RETRY_WAIT)
CALL_WINDOW = timedelta(hours=1)


class BacklogCollector(Collector):
    """The inbox's and the outbox's backlogs and ages, and DR's answers of the last hour, from the database."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.now or timezone.now()
        inbox = GaugeMetricFamily(
            "dr_inbox_backlog",
            "Webhook events received but not processed, or failed, by state and type.",
            labels=["state", "type"],
        )
        events = WebhookEvent.objects.filter(state__in=EVENT_BACKLOG).values("state", "type").annotate(n=Count("pk"))
        for row in events.order_by():
            inbox.add_metric([row["state"], row["type"]], row["n"])
        yield inbox

        outbox = GaugeMetricFamily(
            "dr_outbox_backlog",
            "Instructions to DR not done yet, or failed, by state and kind.",
            labels=["state", "kind"],
        )
        instructions = Instruction.objects.filter(state__in=INSTRUCTION_BACKLOG).values("state", "kind")
        for group in instructions.annotate(n=Count("pk")).order_by():
            outbox.add_metric([group["state"], group["kind"]], group["n"])
        yield outbox

        oldest_event = WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED).aggregate(at=Min("received_at"))
        yield GaugeMetricFamily(
            "dr_inbox_oldest_pending_age_seconds",
            "Age of the oldest event received and not processed yet (0 when none): DR's event-to-effect lag.",
            value=_age(now, oldest_event["at"]),
        )
        oldest = Instruction.objects.filter(state__in=INSTRUCTION_UNSENT).aggregate(at=Min("created_at"))
        yield GaugeMetricFamily(
            "dr_outbox_oldest_pending_age_seconds",
            "Age of the oldest instruction not sent yet (pending, sending or waiting to retry; 0 when none).",
            value=_age(now, oldest["at"]),
        )

        calls = GaugeMetricFamily(
            "dr_api_calls_last_hour",
            "Calls to DR in the call log over the last hour, by every process, by HTTP status ('none': no answer).",
            labels=["status"],
        )
        logged = ApiCall.objects.filter(started_at__gte=now - CALL_WINDOW).values("status").annotate(n=Count("pk"))
        for answer in logged.order_by():
            calls.add_metric([str(answer["status"]) if answer["status"] is not None else "none"], answer["n"])
        yield calls

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def metrics_text() -> bytes:
    """The process's registry (DR client counters, process metrics) and the database's backlogs."""
    backlog = CollectorRegistry(auto_describe=False)
    backlog.register(BacklogCollector())
    return generate_latest(REGISTRY) + generate_latest(backlog)


class MetricsView(View):
    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest) -> HttpResponse:
        token = settings.METRICS_TOKEN
        if not token:
            raise Http404("metrics are off: METRICS_TOKEN is not set")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = HttpResponse("a valid bearer token is needed\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
