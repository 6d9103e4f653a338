from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the project-wide system checks)

        post_migrate.connect(_sync_roles, sender=self)


def _sync_roles(**kwargs: Any) -> None:
    """After every migrate and every flush of a test database, the roles are whole again."""
    from .roles import roles_sync

    roles_sync()
