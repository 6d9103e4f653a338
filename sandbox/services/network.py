"""The bad network on demand, kept in the database so every process sees it."""

import random
import re
import time

from django.db import IntegrityError, transaction
from django.db.models import F

from ..models import NetworkRule, NetworkSettings, RateWindow

DEFAULT_ERROR_STATUSES = [500, 503]


def network_settings() -> NetworkSettings:
    settings, _ = NetworkSettings.objects.get_or_create(pk=1, defaults={"error_statuses": DEFAULT_ERROR_STATUSES})
    return settings


def network_reset() -> NetworkSettings:
    NetworkRule.objects.all().delete()
    RateWindow.objects.all().delete()
    NetworkSettings.objects.filter(pk=1).delete()
    return network_settings()


def rule_take(*, method: str, path: str, api_path: str) -> int | None:
    """Consume one call of the first rule matching this call and return its status, if any.

    The decrement is a conditional UPDATE, so two processes never both take the last call.
    """
    for rule in NetworkRule.objects.filter(remaining__gt=0):
        if rule.method and rule.method.upper() != method.upper():
            continue
        if not rule_matches(rule, path=path, api_path=api_path):
            continue
        if NetworkRule.objects.filter(pk=rule.pk, remaining__gt=0).update(remaining=F("remaining") - 1):
            NetworkRule.objects.filter(pk=rule.pk, remaining=0).delete()
            return rule.status
    return None


def rule_matches(rule: NetworkRule, *, path: str, api_path: str) -> bool:
    if rule.regex:
        try:
            pattern = re.compile(rule.path)
        except re.error:
            return False
        return bool(pattern.search(api_path) or pattern.search(path))
    return api_path.startswith(rule.path) or path.startswith(rule.path)


def capture_should_fail() -> bool:
    """Consume one of the "next N captures fail" the page or the control endpoint asked for."""
    return bool(
        NetworkSettings.objects.filter(pk=1, fail_next_captures__gt=0).update(
            fail_next_captures=F("fail_next_captures") - 1
        )
    )


def pick_error_status(settings: NetworkSettings) -> int:
    statuses = [int(status) for status in settings.error_statuses or DEFAULT_ERROR_STATUSES]
    return random.choice(statuses)


def rate_limited(settings: NetworkSettings) -> bool:
    """Count this call in the current second; True when it is over the configured limit."""
    if not settings.rate_limit_per_second:
        return False
    second = int(time.time())
    if not RateWindow.objects.filter(second=second).update(count=F("count") + 1):
        try:
            with transaction.atomic():
                RateWindow.objects.create(second=second, count=1)
            RateWindow.objects.filter(second__lt=second - 60).delete()
        except IntegrityError:
            # Another process opened this second's window first.
            RateWindow.objects.filter(second=second).update(count=F("count") + 1)
    count = RateWindow.objects.filter(second=second).values_list("count", flat=True).first() or 0
    return count > settings.rate_limit_per_second
