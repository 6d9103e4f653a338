"""Keep secrets and card data out of the call log, the inbox and the admin."""

import json
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

REDACTED = "[redacted]"

# Keys (compared lower-case) whose values never leave the process: payment secrets, card data, keys.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "clientsecret",
        "secret",
        "secretkey",
        "password",
        "token",
        "number",
        "cardnumber",
        "cvv",
        "cvc",
        "securitycode",
        "iban",
        "accountnumber",
    }
)
# Any key naming a secret or a password ("webhookSecret", "signingSecret", "apiPassword", "accessToken").
_SECRET_KEY_PARTS = re.compile(r"secret|passw|token$", re.IGNORECASE)
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_KEY_PATTERN = re.compile(r'(?P<head>"(?P<key>(?:[^"\\]|\\.)*)"\s*:\s*)(?:' + _JSON_STRING + r"|-?\d+)")
_BEARER = re.compile(r"\b(sk_(?:test_|live_)?|whsec_)[A-Za-z0-9_]+")
# Something shaped like a card number (PAN): 13 to 19 digits in a row, or in groups of four (Amex:
# 4-6-5) split by spaces or hyphens, not part of a longer word or id. Only Luhn-valid ones are masked.
_PAN = re.compile(r"(?<![\w-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{5})(?![\w-])")


def is_secret_key(key: Any) -> bool:
    """Whether a JSON key or header name holds a secret (compared without case)."""
    name = str(key).lower()
    return name in SECRET_KEYS or bool(_SECRET_KEY_PARTS.search(name))


def redact_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: REDACTED if is_secret_key(key) else redact_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_data(item) for item in value]
    if isinstance(value, str):
        return mask_card_numbers(value)
    return value


def mask_card_numbers(text: str) -> str:
    """Replace every Luhn-valid card number in free text (an error message, a note) with [redacted]."""
    return _PAN.sub(_mask_pan, text) if any(char.isdigit() for char in text) else text


def _mask_pan(match: re.Match[str]) -> str:
    digits = [int(char) for char in match.group(0) if char.isdigit()]
    if not 13 <= len(digits) <= 19:
        return match.group(0)
    checksum = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return REDACTED if checksum % 10 == 0 else match.group(0)


def redact_json(value: Any, secrets: Iterable[str] = (), **dumps: Any) -> str:
    """``value`` as JSON text (``dumps`` are json.dumps options) with secrets and card numbers redacted."""
    return _redact_secrets(json.dumps(redact_data(value), ensure_ascii=False, **dumps), secrets)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Redact a body that may be JSON (keys above; by pattern when it does not parse, e.g. cut short),
    the configured key and webhook secrets and ``secrets`` wherever they appear, and anything shaped
    like a DR key or signing secret."""
    if not text:
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return _redact_secrets(mask_card_numbers(_KEY_PATTERN.sub(_redact_pair, text)), secrets)
    if isinstance(parsed, dict | list):
        return redact_json(parsed, secrets)
    return _redact_secrets(mask_card_numbers(text), secrets)


def _redact_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({*_configured_secrets(), *(s for s in secrets if s and len(s) >= 8)}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _BEARER.sub(REDACTED, text)


def _redact_pair(match: re.Match[str]) -> str:
    return f'{match["head"]}"{REDACTED}"' if is_secret_key(match["key"]) else match.group(0)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if is_secret_key(name) or "cookie" in name.lower() else value for name, value in headers.items()
    }


def _configured_secrets() -> list[str]:
    return [secret for secret in (settings.DR_SECRET_KEY, *settings.DR_WEBHOOK_SECRETS) if len(secret) >= 8]
