from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from digitalriver.services.outbox import outbox_sweep


class Command(BaseCommand):
    help = "Send every due instruction to Digital River once, print a summary and exit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--ignore-backoff",
            action="store_true",
            help="also send instructions still waiting out their backoff",
        )

    def handle(self, *args: Any, ignore_backoff: bool, **options: Any) -> None:
        summary = outbox_sweep(ignore_backoff=ignore_backoff)
        self.stdout.write(self.style.SUCCESS(str(summary)))
