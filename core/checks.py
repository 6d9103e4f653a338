"""What every process that serves or works must have before it starts."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

MISSING_SECRET_KEY = "DJANGO_SECRET_KEY is required unless DJANGO_DEBUG=1"


def secret_key_is_set() -> bool:
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django refuses to hand out an empty key
        return False


def require_secret_key() -> None:
    """Called as the WSGI app, a Celery worker or beat starts: none of them may run without a key."""
    if not secret_key_is_set():
        raise ImproperlyConfigured(MISSING_SECRET_KEY)


@register(deploy=True)
def secret_key_check(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """`manage.py check --deploy` says it too (a deploy check, so code-only commands still run)."""
    return [] if secret_key_is_set() else [Error(MISSING_SECRET_KEY, id="config.E001")]
