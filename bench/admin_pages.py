"""Admin pages on a large database: the order pages, the operations dashboard and the integration's logs.

Seeds a PostgreSQL database of its own with N orders (two lines each) plus one order of 50 lines
with its fulfillment order, shipments, events, instructions and calls (a long timeline); with
``--events``, a year of webhook events spread over those orders with the instructions, attempts and
calls that go with them (bench/big_tables.py). Then asks for each page several times as a superuser
and prints the median and slowest time, the query count and the time spent in SQL.

    .venv/bin/python bench/admin_pages.py --orders 100000 --events 10000000
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.big_tables import event_id, fill  # noqa: E402
from bench.common import PYTHON, migrated_database, write_result  # noqa: E402

BIG_ORDER = "999000000050"
# An ordinary order of the seeded ones: about a hundred events at ten million, spread over the year.
ORDER_WITH_EVENTS = "100000004242"


def tracking_number(number: int) -> str:
    return f"1Z9{number:09d}84"


def seed(orders: int) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from commerce.models import Order, OrderLine
    from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
    from fulfillment.models import FulfillmentOrder, FulfillmentOrderLine, Shipment, ShipmentItem

    seeded = Order.objects.filter(dr_order_id=BIG_ORDER).exists() and Order.objects.count() >= orders
    if seeded and Shipment.objects.filter(tracking_number=tracking_number(4242)).exists():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE commerce_order, digitalriver_webhookevent, digitalriver_instruction, digitalriver_apicall CASCADE"
        )
    now = timezone.now()
    states = ["accepted", "fulfilled", "complete", "in_review", "cancelled"]
    batch = 5000
    for start in range(0, orders, batch):
        with transaction.atomic():
            made = Order.objects.bulk_create(
                Order(
                    dr_order_id=str(100_000_000_000 + number),
                    upstream_id=f"WEB-{number}",
                    currency="USD",
                    email=f"customer{number}@example.com",
                    customer_name=f"Customer {number}",
                    total_amount=Decimal("70.17"),
                    dr_created_at=now - timedelta(minutes=number),
                    backordered=number % 97 == 0,
                    capture_failed=number % 211 == 0,
                )
                for number in range(start, min(start + batch, orders))
            )
            Order.objects.filter(pk__in=[o.pk for o in made]).update(state=states[start // batch % len(states)])
            OrderLine.objects.bulk_create(
                OrderLine(order=order, dr_item_id=f"{order.dr_order_id}{line}", dr_sku_id=f"SKU-{line}", quantity=2)
                for order in made
                for line in (1, 2)
            )
            # Most orders have shipped, each with its own tracking number.
            Shipment.objects.bulk_create(
                Shipment(
                    order=order,
                    dr_shipment_id=f"SHP-{order.dr_order_id}",
                    tracking_company="UPS",
                    tracking_number=tracking_number(number),
                )
                for number, order in enumerate(made, start=start)
                if number % 5
            )
    big = Order.objects.create(dr_order_id=BIG_ORDER, currency="USD", email="big@example.com", dr_created_at=now)
    Order.objects.filter(pk=big.pk).update(state="accepted")
    lines = OrderLine.objects.bulk_create(
        OrderLine(order=big, dr_item_id=f"{BIG_ORDER}{n:02d}", dr_sku_id=f"SKU-{n}", name=f"Item {n}", quantity=3)
        for n in range(50)
    )
    fulfillment_order = FulfillmentOrder.objects.create(order=big, dr_fulfillment_order_id="FO-BIG", created_by_us=True)
    FulfillmentOrderLine.objects.bulk_create(
        FulfillmentOrderLine(
            fulfillment_order=fulfillment_order,
            order_line=line,
            dr_item_id=f"FOL-{line.dr_item_id}",
            inventory_item_id=line.dr_sku_id,
            quantity=3,
            pending=2,
            shipped=1,
        )
        for line in lines
    )
    for number, line in enumerate(lines[:20]):
        shipment = Shipment.objects.create(
            order=big, fulfillment_order=fulfillment_order, dr_shipment_id=f"SHIP-{number}", tracking_number="1Z"
        )
        ShipmentItem.objects.create(shipment=shipment, order_line=line, quantity=1)
    WebhookEvent.objects.bulk_create(
        WebhookEvent(
            dr_event_id=f"evt-big-{n}",
            type="fulfillment_order.shipped",
            state="processed",
            order_id=BIG_ORDER,
            body="{}",
            payload={"id": f"evt-big-{n}"},
        )
        for n in range(60)
    )
    instructions = Instruction.objects.bulk_create(
        Instruction(kind="fulfillment.post_fulfillment", subject=f"order:{BIG_ORDER}", payload={"n": n})
        for n in range(60)
    )
    Attempt.objects.bulk_create(
        Attempt(instruction=i, number=1, started_at=now, duration_ms=40, outcome="succeeded") for i in instructions
    )
    ApiCall.objects.bulk_create(
        ApiCall(method="POST", path="/fulfillments", status=201, subject=f"order:{BIG_ORDER}") for _ in range(60)
    )


def vacuum_analyze() -> None:
    """What autovacuum does on a live database, done here since a benchmark server may run without it:
    the visibility map index-only scans need, and the statistics the planner (and the changelists'
    estimated counts) read. Quick on tables it has already seen."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def pages_to_time() -> dict[str, str]:
    from commerce.models import Order
    from digitalriver.models import Instruction, WebhookEvent

    big = Order.objects.get(dr_order_id=BIG_ORDER)
    pages = {
        "order changelist": "/admin/commerce/order/",
        "order changelist, search by email": "/admin/commerce/order/?q=customer4242%40example.com",
        "order changelist, search by part of an email": "/admin/commerce/order/?q=customer4242%40exa",
        "order changelist, search by tracking number": f"/admin/commerce/order/?q={tracking_number(4242)}",
        "order changelist, search by part of an order id": "/admin/commerce/order/?q=00004242",
        "order changelist, search by SKU": "/admin/commerce/order/?q=SKU-49",
        "orders API, search by tracking number": f"/api/orders/?q={tracking_number(4242)}",
        "order changelist, needs a person": "/admin/commerce/order/?capture_failed__exact=1",
        "order of 50 lines": f"/admin/commerce/order/{big.pk}/change/",
        "order of 50 lines, technical timeline": f"/admin/commerce/order/{big.pk}/change/?technical=1",
        "order of 50 lines, whole timeline": f"/admin/commerce/order/{big.pk}/timeline/?technical=1",
        "operations dashboard": "/admin/operations/dashboard/",
        "events": "/admin/digitalriver/webhookevent/",
        "events, failed": "/admin/digitalriver/webhookevent/?state__exact=failed",
        "events, search by order id": f"/admin/digitalriver/webhookevent/?q={ORDER_WITH_EVENTS}",
        "events, search by event id": f"/admin/digitalriver/webhookevent/?q={event_id(4242)}",
        "events, search by event type": "/admin/digitalriver/webhookevent/?q=fulfillment_order.shipped",
        "events, page 1000": "/admin/digitalriver/webhookevent/?p=1000",
        "events, oldest first, page 1000": "/admin/digitalriver/webhookevent/?o=1&p=1000",
        "instructions": "/admin/digitalriver/instruction/",
        "instructions, failed": "/admin/digitalriver/instruction/?state__exact=failed",
        "instructions, search by order id": f"/admin/digitalriver/instruction/?q={ORDER_WITH_EVENTS}",
        "API calls": "/admin/digitalriver/apicall/",
        "API calls, search by order id": f"/admin/digitalriver/apicall/?q={ORDER_WITH_EVENTS}",
    }
    failed = WebhookEvent.objects.filter(state=WebhookEvent.State.FAILED).order_by("-pk").first()
    if failed is not None:
        pages["a failed event"] = f"/admin/digitalriver/webhookevent/{failed.pk}/change/"
    retried = Instruction.objects.filter(subject=f"order:{ORDER_WITH_EVENTS}", attempts__gt=1).first()
    if retried is not None:
        pages["an instruction with its attempts"] = f"/admin/digitalriver/instruction/{retried.pk}/change/"
    return pages


def measure(repeat: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    figures = {}
    for name, url in pages_to_time().items():
        times, sql_times, queries = [], [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, secure=True)
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
            queries = len(captured)
            sql_times.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
        figures[name] = {
            "url": url,
            "p50_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "sql_p50_ms": round(statistics.median(sql_times), 1),
            "queries": queries,
        }
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=0, help="webhook events to fill the inbox with (0: none)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dr_bench_admin")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.inside:
        import json

        import django

        django.setup()
        from django.utils import timezone

        seed(args.orders)
        tables = fill(events=args.events, orders=args.orders, big_order=BIG_ORDER, now=timezone.now())
        vacuum_analyze()
        print(json.dumps({"tables": tables, "pages": measure(args.repeat)}))
        return

    import json

    # Production settings serve the admin's files from the collected manifest.
    env = migrated_database(args.database_url, static=True, DJANGO_ALLOWED_HOSTS="testserver")
    child = subprocess.run(
        [PYTHON, __file__, "--inside", *sys.argv[1:]],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"the measuring process failed ({child.returncode})")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    figures, tables = result["pages"], result["tables"]
    print(f"{args.orders:,} orders; " + ", ".join(f"{rows:,} {table}" for table, rows in tables.items()))
    print(f"each page asked for {args.repeat} times as a superuser")
    print(f"{'page':<48}{'p50 ms':>9}{'max ms':>9}{'SQL ms':>9}{'queries':>9}")
    for name, row in figures.items():
        print(f"{name:<48}{row['p50_ms']:>9}{row['max_ms']:>9}{row['sql_p50_ms']:>9}{row['queries']:>9}")
    write_result("admin_pages", {"orders": args.orders, "events": args.events, "tables": tables, "pages": figures})


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
