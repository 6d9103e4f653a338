from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from django.utils.dateparse import parse_datetime


def dr_time(value: datetime | None) -> str | None:
    """DR's timestamps: UTC, millisecond precision, `Z` suffix.

    Milliseconds matter: clients order `stateTransitions` by these times, and two transitions often
    happen within one second in the sandbox.
    """
    if value is None:
        return None
    value = value.astimezone(UTC) if timezone.is_aware(value) else value
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_dr_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def money(value: Decimal) -> float:
    """DR writes amounts as JSON numbers."""
    return float(value)


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
