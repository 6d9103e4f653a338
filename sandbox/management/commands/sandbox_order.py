from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.services.lifecycle import OrderError
from sandbox.services.orders import PLACEABLE_STATES, order_place, parse_lines


class Command(BaseCommand):
    help = "Place a test order in the sandbox from pushed SKUs and print its DR order id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sku", action="append", required=True, metavar="ID:QTY[:PRICE]", help="a line; repeat for more lines"
        )
        parser.add_argument("--state", choices=PLACEABLE_STATES, default="accepted")
        parser.add_argument("--email", default="customer@example.com")
        parser.add_argument("--upstream-id", default="")
        parser.add_argument("--currency", default="USD")
        parser.add_argument(
            "--card", default="4111111111111111", help="one of DR's test cards (4000000000004103: the capture fails, …)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            order = order_place(
                lines=parse_lines(" ".join(options["sku"])),
                state=options["state"],
                email=options["email"],
                upstream_id=options["upstream_id"],
                currency=options["currency"],
                card=options["card"],
            )
        except (OrderError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(order.dr_id)
