"""``/metrics``: off without METRICS_TOKEN, closed to a wrong token, the backlogs from the database."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from digitalriver.models import ApiCall, Instruction, WebhookEvent

from .conftest import event, instruction

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-7c1e"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_without_a_token_configured_the_page_does_not_exist(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
def test_a_missing_or_wrong_token_is_401(client, settings, header):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"dr_" not in response.content


def test_the_backlogs_by_state_and_type_and_the_oldest_ages(client, settings):
    settings.METRICS_TOKEN = TOKEN
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        [
            event(at=now - timedelta(minutes=10), state=WebhookEvent.State.RECEIVED, event_type="order.accepted"),
            event(at=now - timedelta(minutes=1), state=WebhookEvent.State.RECEIVED, event_type="order.accepted"),
            event(at=now, state=WebhookEvent.State.FAILED, event_type="order.charge.failed"),
            event(at=now - timedelta(days=2), state=WebhookEvent.State.PROCESSED),  # history, not backlog
        ]
    )
    Instruction.objects.bulk_create(
        [
            *(instruction(at=now, state=Instruction.State.RETRY_WAIT, kind="fulfillment") for _ in range(3)),
            instruction(at=now - timedelta(hours=1), state=Instruction.State.PENDING, kind="refund"),
            instruction(at=now - timedelta(days=3), state=Instruction.State.DONE),
        ]
    )
    ApiCall.objects.create(method="GET", path="/orders/1", status=200)
    ApiCall.objects.create(method="POST", path="/fulfillments", status=None)

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response.content.decode())
    assert found[("dr_inbox_backlog", (("state", "received"), ("type", "order.accepted")))] == 2
    assert found[("dr_inbox_backlog", (("state", "failed"), ("type", "order.charge.failed")))] == 1
    assert not any(name == "dr_inbox_backlog" and ("state", "processed") in labels for name, labels in found)
    assert found[("dr_outbox_backlog", (("kind", "fulfillment"), ("state", "retry_wait")))] == 3
    assert found[("dr_outbox_backlog", (("kind", "refund"), ("state", "pending")))] == 1
    assert not any(name == "dr_outbox_backlog" and ("state", "done") in labels for name, labels in found)
    assert 590 <= found[("dr_inbox_oldest_pending_age_seconds", ())] < 700
    assert 3590 <= found[("dr_outbox_oldest_pending_age_seconds", ())] < 3700
    assert found[("dr_api_calls_last_hour", (("status", "200"),))] == 1
    assert found[("dr_api_calls_last_hour", (("status", "none"),))] == 1
    # The DR client's own counters are declared in every process, counted or not.
    text = response.content.decode()
    for name in ("dr_api_calls_total", "dr_api_call_duration_seconds", "dr_api_rate_limited_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def test_nothing_waiting_is_age_zero(client, settings):
    settings.METRICS_TOKEN = TOKEN
    found = samples(client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode())
    assert found[("dr_inbox_oldest_pending_age_seconds", ())] == 0
    assert found[("dr_outbox_oldest_pending_age_seconds", ())] == 0
