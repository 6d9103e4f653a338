"""A kept database connection that died (a database restart) costs one failed job, not lost work.

Connections are kept across requests and jobs (CONN_MAX_AGE) and, by default, not checked with a
SELECT 1 before each one (``DATABASE_HEALTH_CHECKS``, config/settings.py): the job that finds the
connection dead fails, the connection is closed after it as after a request
(``close_old_connections``, which the worker runs around every job, config/celery.py), and the next
job opens a new one. The event it was handling is still stored and waiting.
"""

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from digitalriver.models import WebhookEvent
from digitalriver.services import inbox
from tests.conftest import fixture, make_event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def terminate_this_connection_from_the_server() -> None:
    backend = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])


def test_connections_are_not_checked_before_each_job_by_default():
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is False


def test_a_job_on_a_dead_connection_fails_and_the_next_one_processes_the_event(catalog):
    payload = make_event("order.accepted", fixture("order.json"))
    event = WebhookEvent.objects.create(dr_event_id=payload["id"], type=payload["type"], body="{}", payload=payload)
    close_old_connections()  # the job before ends; its connection is kept
    terminate_this_connection_from_the_server()

    with pytest.raises(DatabaseError):
        inbox.webhook_event_process(event_id=event.pk)
    close_old_connections()  # after the failed job: the broken connection is closed

    processed = inbox.webhook_event_process(event_id=event.pk)
    assert processed is not None and processed.state == WebhookEvent.State.PROCESSED
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 1  # the failed job never claimed it


def test_a_dead_connection_fails_one_event_of_a_gathered_batch_not_all(catalog):
    """process_webhook_events runs up to 50 gathered events on one connection: the first finds it
    dead and fails, and the connection is closed then, so that the next event opens a new one
    rather than every later event of the batch failing and waiting for the inbox sweep."""
    from digitalriver.models import WebhookEvent
    from digitalriver.tasks import process_webhook_events
    from tests.conftest import fixture, make_event

    events = []
    for _ in range(2):
        payload = make_event("order.accepted", fixture("order.json"))  # two deliveries, new event ids
        events.append(
            WebhookEvent.objects.create(dr_event_id=payload["id"], type=payload["type"], body="{}", payload=payload)
        )
    close_old_connections()
    terminate_this_connection_from_the_server()

    process_webhook_events([event.pk for event in events])  # logs the failures, as in the worker
    close_old_connections()

    states = [WebhookEvent.objects.get(pk=event.pk).state for event in events]
    assert states[1] == WebhookEvent.State.PROCESSED, states
