import logging
import threading
import webbrowser
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand
from django.core.management.base import CommandParser

from core.management.commands.ensure_admin import PASSWORD, USERNAME
from core.periodic import start_periodic_jobs

logger = logging.getLogger(__name__)


class Command(RunserverCommand):
    # Set by runserver's handle() before inner_run; its stubs do not declare them.
    addr: str
    port: str
    _raw_ipv6: bool
    seeding_demo = False

    help = (
        "The embedded server: runserver plus the periodic sweeps in this process (when no broker is set), "
        "and the sandbox's delivery loop when DR_SANDBOX=1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--open", action="store_true", help="open the admin in a browser once it is up")
        parser.add_argument("--demo", action="store_true", help="seed the demo through the sandbox once it is up")

    def inner_run(self, *args: Any, **options: Any) -> None:
        # inner_run is the serving process (the autoreloader's child), so the loops start once.
        if not settings.CELERY_BROKER_URL:
            start_periodic_jobs()
        if settings.DR_SANDBOX:
            from sandbox.delivery import start_background_delivery

            start_background_delivery()
        self.seeding_demo = bool(options.get("demo") and settings.DR_SANDBOX)
        if self.seeding_demo:
            threading.Timer(1.0, _seed_demo, kwargs={"then": self.say_ready}).start()
        if options.get("open"):
            threading.Timer(1.5, webbrowser.open, args=(self.admin_url(),)).start()
        super().inner_run(*args, **options)

    def admin_url(self) -> str:
        return f"{self.protocol}://{self.addr if not self._raw_ipv6 else f'[{self.addr}]'}:{self.port}/admin/"

    def on_bind(self, server_port: int) -> None:
        super().on_bind(server_port)
        if not self.seeding_demo:
            self.say_ready()

    def say_ready(self) -> None:
        """The last line a newcomer reads: where to go and how to log in (once the demo is seeded)."""
        login = f" — log in as {USERNAME} / {PASSWORD}" if settings.DEBUG else ""
        self.stdout.write(self.style.SUCCESS(f"ready: {self.admin_url()}{login}"))


def _seed_demo(then: Callable[[], None]) -> None:
    from django.db import close_old_connections

    from sandbox.demo import DemoError, demo_seed

    try:
        demo_seed(say=logger.info)
    except DemoError as exc:
        logger.error("demo: %s", exc)
    finally:
        close_old_connections()
        then()
