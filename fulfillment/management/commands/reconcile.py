from typing import Any

from django.core.management.base import BaseCommand, CommandError

from fulfillment.reconcile import orders_reconcile


class Command(BaseCommand):
    help = (
        "Compare every open order with Digital River (GET /orders/{id}) and pull the events DR kept "
        "(GET /events) into the inbox, so that a missed webhook cannot leave an order stuck."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = orders_reconcile()
        for line in summary.lines():
            self.stdout.write(line)
        if summary.errors:
            # A non-zero exit lets cron or a monitor notice; everything else was still reconciled.
            raise CommandError(f"reconcile finished with {len(summary.errors)} error(s)")
        self.stdout.write(self.style.SUCCESS("reconciled"))
