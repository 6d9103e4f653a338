from typing import Any

from django.core.management.base import BaseCommand

from core.roles import roles_sync


class Command(BaseCommand):
    help = "Create the back office's roles (groups) and grant each the permissions of core.roles.ROLES."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, group in roles_sync().items():
            self.stdout.write(f"{name}: {group.permissions.count()} permissions")
