"""Reading and changing the bad network from the control endpoint and the page."""

from typing import Any

from django.db import transaction

from ..models import NetworkRule, NetworkSettings
from ..types import JSONObject
from .network import network_reset, network_settings

RATES = ("error_rate", "error_after_processing", "drop_rate", "duplicate_rate", "delay_rate", "slow_rate")
COUNTS = (
    "latency_ms",
    "latency_jitter_ms",
    "slow_ms",
    "rate_limit_per_second",
    "fail_next_captures",
    "delay_seconds",
    "max_attempts",
)


class ControlError(ValueError):
    pass


def control_state() -> JSONObject:
    net = network_settings()
    return {
        **{
            key: getattr(net, key)
            for key in (*RATES, *COUNTS, "backoff_seconds", "refund_delay_seconds", "reorder", "error_statuses")
        },
        "rules": [
            {
                "id": rule.pk,
                "path": rule.path,
                "regex": rule.regex,
                "method": rule.method,
                "status": rule.status,
                "count": rule.remaining,
            }
            for rule in NetworkRule.objects.filter(remaining__gt=0)
        ],
    }


def control_update(values: JSONObject) -> JSONObject:
    """Apply a control document (see the control view's docstring); unknown keys are an error."""
    known = {
        *RATES,
        *COUNTS,
        "backoff_seconds",
        "refund_delay_seconds",
        "reorder",
        "error_statuses",
        "reset",
        "next_calls",
        "clear_rules",
    }
    unknown = sorted(set(values) - known)
    if unknown:
        raise ControlError(f"unknown keys: {', '.join(unknown)}")
    with transaction.atomic():
        if values.get("reset"):
            network_reset()
        net = NetworkSettings.objects.select_for_update().get(pk=network_settings().pk)
        for key in RATES:
            if key in values:
                setattr(net, key, _rate(key, values[key]))
        for key in COUNTS:
            if key in values:
                setattr(net, key, _count(key, values[key]))
        if "backoff_seconds" in values:
            net.backoff_seconds = _number("backoff_seconds", values["backoff_seconds"])
        if "refund_delay_seconds" in values:
            net.refund_delay_seconds = _number("refund_delay_seconds", values["refund_delay_seconds"])
        if "reorder" in values:
            if not isinstance(values["reorder"], bool):
                raise ControlError("reorder must be true or false")
            net.reorder = values["reorder"]
        if "error_statuses" in values:
            statuses = values["error_statuses"]
            if not isinstance(statuses, list) or not statuses or not all(_is_status(s) for s in statuses):
                raise ControlError("error_statuses must be a non-empty list of HTTP statuses (400-599)")
            net.error_statuses = [int(s) for s in statuses]
        net.save()
        if values.get("clear_rules"):
            NetworkRule.objects.all().delete()
        rules = values.get("next_calls")
        for rule in [rules] if isinstance(rules, dict) else rules or []:
            _add_rule(rule)
    return control_state()


def _add_rule(rule: Any) -> None:
    if not isinstance(rule, dict) or not isinstance(rule.get("path"), str) or not rule["path"]:
        raise ControlError("next_calls entries need a 'path'")
    if not _is_status(rule.get("status")):
        raise ControlError("next_calls entries need a 'status' between 400 and 599")
    count = _count("count", rule.get("count", 1))
    if count < 1:
        raise ControlError("next_calls 'count' must be at least 1")
    NetworkRule.objects.create(
        path=rule["path"],
        regex=bool(rule.get("regex")),
        method=str(rule.get("method") or "").upper(),
        status=int(rule["status"]),
        remaining=count,
    )


def _is_status(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(f"{key} must be a non-negative number")
    return float(value)


def _rate(key: str, value: Any) -> float:
    value = _number(key, value)
    if value > 1:
        raise ControlError(f"{key} must be between 0 and 1")
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlError(f"{key} must be a non-negative integer")
    return value
