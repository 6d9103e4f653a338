from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME = "admin"
PASSWORD = "admin"


class Command(BaseCommand):
    help = "Development only: make sure a superuser 'admin' exists and print how to log in."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("ensure_admin only runs with DJANGO_DEBUG=1; use createsuperuser in production")
        users = get_user_model().objects
        if not users.filter(username=USERNAME).exists():
            users.create_superuser(USERNAME, "admin@example.com", PASSWORD)
            self.stdout.write(f"created the superuser '{USERNAME}'")
        self.stdout.write(self.style.SUCCESS(f"log in at /admin/ as {USERNAME} / {PASSWORD} (development only)"))
