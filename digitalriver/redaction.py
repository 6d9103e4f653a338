"""Keep secrets and card data out of the call log, the inbox and the admin."""

import json
import re
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
_KEY_ALTERNATIVES = "|".join(re.escape(key) for key in sorted(SECRET_KEYS))
_KEY_PATTERN = re.compile(r'("(?:' + _KEY_ALTERNATIVES + r')"\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d+)', re.IGNORECASE)
_BEARER = re.compile(r"\b(sk_(?:test_)?|whsec_)[A-Za-z0-9_]+")


def redact_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: REDACTED if str(key).lower() in SECRET_KEYS else redact_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_data(item) for item in value]
    return value


def redact_text(text: str) -> str:
    """Redact a body that may be JSON (keys above) and any configured key that appears verbatim."""
    if not text:
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        redacted = _KEY_PATTERN.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    else:
        redacted = json.dumps(redact_data(parsed), ensure_ascii=False) if isinstance(parsed, dict | list) else text
    for secret in _configured_secrets():
        redacted = redacted.replace(secret, REDACTED)
    return _BEARER.sub(REDACTED, redacted)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if name.lower() in SECRET_KEYS or "cookie" in name.lower() else value
        for name, value in headers.items()
    }


def _configured_secrets() -> list[str]:
    return [secret for secret in (settings.DR_SECRET_KEY, *settings.DR_WEBHOOK_SECRETS) if len(secret) >= 8]
