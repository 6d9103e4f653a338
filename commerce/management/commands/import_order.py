from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from commerce.services import order_fetch
from digitalriver.errors import DigitalRiverError, NotFound


class Command(BaseCommand):
    help = "Fetch one order from Digital River and mirror it (lines, charges, state)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dr_order_id", help="DR's order id, e.g. 231388420336")

    def handle(self, *args: Any, dr_order_id: str, **options: Any) -> None:
        try:
            order = order_fetch(dr_order_id=dr_order_id)
        except NotFound as exc:
            raise CommandError(f"DR has no order {dr_order_id}") from exc
        except DigitalRiverError as exc:
            raise CommandError(f"could not fetch order {dr_order_id}: {exc}") from exc
        lines = order.lines.count()
        flag = " (flagged: a line's SKU is not in our catalog)" if order.unknown_sku else ""
        self.stdout.write(
            self.style.SUCCESS(f"order {order.dr_order_id}: {order.get_state_display()}, {lines} line(s){flag}")
        )
