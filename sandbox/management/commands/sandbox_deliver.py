import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sandbox.delivery import LOOP_INTERVAL_SECONDS, deliver_due


class Command(BaseCommand):
    help = (
        "Deliver the sandbox's due events: once with --once, else in a loop. `serve` runs the same loop "
        "in-process; use this where the web server is gunicorn or several processes share the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, print how many requests were sent")
        parser.add_argument("--interval", type=float, default=LOOP_INTERVAL_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.stdout.write(f"{deliver_due()} sent")
            return
        while True:
            deliver_due()
            time.sleep(options["interval"])
