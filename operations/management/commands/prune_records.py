from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations.retention import MIN_DAYS, prune_records


class Command(BaseCommand):
    help = (
        "Delete processed webhook events, API calls and attempts of done instructions older than "
        "RETENTION_DAYS (or --days), in batches; failed events, open orders' records and business events stay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Keep this many days (default RETENTION_DAYS).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.RETENTION_DAYS
        if days < MIN_DAYS:
            raise CommandError(f"--days must be at least {MIN_DAYS} (the dashboard's week)")
        result = prune_records(days=days, dry_run=options["dry_run"])
        verb = "would delete" if result.dry_run else "deleted"
        for table, count in result.counts.items():
            self.stdout.write(f"{table}: {verb} {count}")
        self.stdout.write(f"(older than {result.cutoff:%Y-%m-%d %H:%M} UTC, {days} days)")
