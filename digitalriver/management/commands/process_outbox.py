from django.core.management.base import BaseCommand

from digitalriver.services.outbox import outbox_sweep


class Command(BaseCommand):
    help = "Send every due instruction to Digital River once, print a summary and exit."

    def add_arguments(self, parser):
        parser.add_argument(
            "--ignore-backoff",
            action="store_true",
            help="also send instructions still waiting out their backoff",
        )

    def handle(self, *args, ignore_backoff, **options):
        summary = outbox_sweep(ignore_backoff=ignore_backoff)
        self.stdout.write(self.style.SUCCESS(str(summary)))
