"""The operations dashboard: who may see it, what it counts, what its charts draw, and that it asks the
database the same few questions however many rows there are."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.models import Order
from digitalriver.models import Instruction, WebhookEvent
from operations.charts import BarChart, Bucket, Series
from operations.selectors import dashboard_get

from .conftest import captures, event, instruction, order

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/operations/dashboard/"
# Half past two in the afternoon: hours and days in the charts are counted back from here.
NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def test_operations_see_the_dashboard_linked_from_the_admin_index(operations_client):
    index = operations_client.get("/admin/")
    assert DASHBOARD.encode() in index.content
    assert b"Digital River integration" in index.content  # the app list is still there
    response = operations_client.get(DASHBOARD)
    assert response.status_code == 200
    assert b"Orders needing a person" in response.content


def test_merchandisers_neither_see_the_link_nor_open_the_dashboard(merchandiser_client):
    assert DASHBOARD.encode() not in merchandiser_client.get("/admin/").content
    assert merchandiser_client.get(DASHBOARD).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_flag_counts_link_to_the_filtered_order_list(operations_client):
    Order.objects.bulk_create(
        [
            *(order(capture_failed=True) for _ in range(3)),
            order(cancellation_rejected=True, backordered=True),
            *(order() for _ in range(5)),
        ]
    )
    response = operations_client.get(DASHBOARD)
    flags = {flag.name: flag for flag in response.context["dashboard"].flags}
    assert {name: flag.count for name, flag in flags.items()} == {
        "capture_failed": 3,
        "authorization_lapsed": 0,
        "cancellation_rejected": 1,
        "refund_failed": 0,
        "dispute_open": 0,
        "refund_waiting": 0,
        "backordered": 1,
        "unknown_sku": 0,
    }
    assert flags["capture_failed"].url == "/admin/commerce/order/?capture_failed__exact=1"
    assert b'href="/admin/commerce/order/?capture_failed__exact=1"' in response.content
    changelist = operations_client.get(flags["capture_failed"].url)
    assert changelist.context["cl"].result_count == 3


def test_failed_events_waiting_instructions_and_the_oldest_stuck_items(operations_client):
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        [
            event(at=now - timedelta(hours=5), state=WebhookEvent.State.RECEIVED),
            event(at=now - timedelta(minutes=1), state=WebhookEvent.State.RECEIVED),
            event(at=now - timedelta(hours=2), state=WebhookEvent.State.FAILED, error="KeyError: 'orderId'"),
            event(at=now, state=WebhookEvent.State.PROCESSED),
        ]
    )
    Instruction.objects.bulk_create(
        [
            instruction(at=now - timedelta(hours=3), state=Instruction.State.RETRY_WAIT),
            instruction(at=now - timedelta(hours=1), state=Instruction.State.PENDING),
            instruction(at=now - timedelta(days=1), state=Instruction.State.FAILED, code="invalid_parameter"),
            instruction(at=now, state=Instruction.State.DONE),
        ]
    )
    response = operations_client.get(DASHBOARD)
    dashboard = response.context["dashboard"]
    assert (dashboard.events_failed, dashboard.events_unprocessed) == (1, 2)
    assert (dashboard.instructions_waiting, dashboard.instructions_failed) == (2, 1)
    waiting = operations_client.get(dashboard.links["waiting_instructions"])
    assert waiting.status_code == 200 and waiting.context["cl"].result_count == 2
    assert operations_client.get(dashboard.links["failed_events"]).context["cl"].result_count == 1

    stuck = {section.title: section.rows for section in dashboard.stuck}
    oldest_unprocessed = WebhookEvent.objects.filter(state="received").order_by("received_at").first()
    assert stuck["Events received but not processed"][0].pk == oldest_unprocessed.pk
    assert [row.get_state_display() for row in stuck["Instructions waiting to be sent"]] == [
        "Waiting to retry",
        "Pending",
    ]
    [failed] = stuck["Failed instructions"]
    assert failed.last_error_code == "invalid_parameter"
    assert f'href="/admin/digitalriver/instruction/{failed.pk}/change/"'.encode() in response.content
    assert f'href="/admin/digitalriver/webhookevent/{oldest_unprocessed.pk}/change/"'.encode() in response.content
    assert b"KeyError: &#x27;orderId&#x27;" in response.content


def test_charts_count_events_instructions_and_captures_per_hour_and_per_day():
    WebhookEvent.objects.bulk_create(
        [
            *(event(at=NOW - timedelta(minutes=10)) for _ in range(3)),
            event(at=NOW - timedelta(minutes=20), state=WebhookEvent.State.FAILED),
            *(event(at=NOW - timedelta(hours=2)) for _ in range(2)),
            *(event(at=NOW - timedelta(hours=30)) for _ in range(4)),  # yesterday, 08:30
            *(event(at=NOW - timedelta(days=8)) for _ in range(5)),  # older than the charts
        ]
    )
    Instruction.objects.bulk_create(
        [
            instruction(at=NOW - timedelta(hours=1)),
            instruction(at=NOW - timedelta(hours=1), state=Instruction.State.RETRY_WAIT),
            instruction(at=NOW - timedelta(days=3), state=Instruction.State.FAILED),
        ]
    )
    orders = Order.objects.bulk_create(order() for _ in range(3))
    captures(orders[:2], at=NOW - timedelta(hours=4))
    captures(orders[2:], at=NOW - timedelta(hours=4), state="failed")

    events, instructions, captured = dashboard_get(now=NOW).charts

    hourly = {bucket.label: bucket.counts for bucket in events.hourly.buckets}
    assert len(events.hourly.buckets) == 24 and events.hourly.buckets[-1].label == "14:00"
    assert hourly["14:00"] == {"processed": 3, "failed": 1}
    assert hourly["12:00"] == {"processed": 2}
    assert events.hourly.total == 6
    daily = [(bucket.label, bucket.total) for bucket in events.daily.buckets]
    assert daily == [
        ("Sat 14", 0),
        ("Sun 15", 0),
        ("Mon 16", 0),
        ("Tue 17", 0),
        ("Wed 18", 0),
        ("Thu 19", 4),
        ("Fri 20", 6),
    ]
    assert {b.label: b.counts for b in instructions.hourly.buckets}["13:00"] == {"done": 1, "waiting": 1}
    assert {b.label: b.counts for b in instructions.daily.buckets}["Tue 17"] == {"failed": 1}
    assert {b.label: b.counts for b in captured.hourly.buckets}["10:00"] == {"complete": 2, "failed": 1}


def test_the_page_draws_the_bars_with_a_legend_and_axis_titles(operations_client):
    at = timezone.now() - timedelta(minutes=1)
    WebhookEvent.objects.bulk_create([*(event(at=at) for _ in range(3)), event(at=at, state="failed")])
    content = operations_client.get(DASHBOARD).content.decode()
    assert content.count("<svg viewBox") == 6
    # Each stacked segment says what it counts when hovered; the bucket is the events' own hour.
    assert f"<title>{at:%H}:00: 3 processed</title>" in content
    assert f"<title>{at:%H}:00: 1 failed</title>" in content
    assert "hour (UTC)" in content and "day (UTC)" in content
    assert "not processed yet <b>0</b>" in content and "failed <b>1</b>" in content


def test_bars_are_as_tall_as_their_counts_on_a_round_scale():
    series = (Series("ok", "ok", "green"), Series("bad", "bad", "red"))
    chart = BarChart(
        title="t",
        unit="events",
        axis="hour",
        series=series,
        buckets=[Bucket("a", {"ok": 2}), Bucket("b", {"ok": 3, "bad": 1}), Bucket("c", {})],
    )
    assert [tick.label for tick in chart.ticks] == ["0", "1", "2", "3", "4"]
    short, tall, empty = chart.bars
    assert sum(s.height for s in tall.segments) == pytest.approx(2 * sum(s.height for s in short.segments))
    assert tall.top == pytest.approx(chart.top)  # the tallest bar reaches the top of the scale
    assert [s.color for s in tall.segments] == ["green", "red"]  # failures stacked on top
    assert empty.segments == []
    big = BarChart(title="t", unit="u", axis="x", series=series, buckets=[Bucket("a", {"ok": 1234})])
    assert big.tick_step == 500 and big.ticks[-1].label == "1,500"


def test_the_number_of_queries_does_not_grow_with_the_rows(operations_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operations_client.get(DASHBOARD).status_code == 200
        return len(captured)

    empty = queries()
    now = timezone.now()
    orders = Order.objects.bulk_create(
        order(at=now - timedelta(hours=n), capture_failed=n % 3 == 0, backordered=n % 5 == 0) for n in range(200)
    )
    captures(orders, at=now - timedelta(hours=2))
    WebhookEvent.objects.bulk_create(
        event(at=now - timedelta(hours=n), state=["processed", "failed", "received", "ignored"][n % 4])
        for n in range(300)
    )
    Instruction.objects.bulk_create(
        instruction(at=now - timedelta(hours=n), state=["done", "failed", "pending", "retry_wait"][n % 4])
        for n in range(300)
    )
    assert queries() == empty


@pytest.mark.postgres
def test_the_inbox_and_outbox_questions_are_answered_from_indexes_alone():
    """At ten million events, counting by state with COUNT(id), or reading each stuck row by a
    table-wide sort, read a row of the table per counted row: seconds instead of milliseconds. Each
    question about events and instructions must be answerable by an index, and the counts by the
    index alone (PostgreSQL is told not to scan the table, so that even these few rows show the plan)."""
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        event(at=now - timedelta(hours=n), state=["processed", "failed", "received"][n % 3]) for n in range(30)
    )
    Instruction.objects.bulk_create(
        instruction(at=now - timedelta(hours=n), state=["done", "failed", "pending"][n % 3]) for n in range(30)
    )
    with CaptureQueriesContext(connection) as captured:
        dashboard_get(now=now)
    asked = [
        query["sql"]
        for query in captured
        if 'FROM "digitalriver_webhookevent"' in query["sql"] or 'FROM "digitalriver_instruction"' in query["sql"]
    ]
    assert len(asked) == 8
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        for sql in asked:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, (sql, plan)
            if "LIMIT" in sql:
                assert "Sort" not in plan, (sql, plan)  # the oldest few, in the order of an index
            if "COUNT(" in sql:
                assert "Index Only Scan" in plan, (sql, plan)
