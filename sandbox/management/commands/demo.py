from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.demo import DemoError, demo_seed


class Command(BaseCommand):
    help = (
        "Seed a walkable demo through the sandbox: SKUs of every fulfillment model, and orders shipped, "
        "cancelled, backordered and in review, returned and refunded, a refund that fails, a dispute. "
        "Needs the server running (make run seeds it for you)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DR_SANDBOX:
            raise CommandError("the demo runs against the sandbox: set DR_SANDBOX=1")
        try:
            demo_seed(say=self.stdout.write)
        except DemoError as exc:
            raise CommandError(str(exc)) from exc
