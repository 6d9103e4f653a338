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


def is_secret_key(key: Any) -> bool:
    """Whether a JSON key or header name holds a secret (compared without case)."""
    name = str(key).lower()
    return name in SECRET_KEYS or bool(_SECRET_KEY_PARTS.search(name))


def redact_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: REDACTED if is_secret_key(key) else redact_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_data(item) for item in value]
    return value


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Redact a body that may be JSON (keys above; by pattern when it does not parse, e.g. cut short),
    the configured key and webhook secrets and ``secrets`` wherever they appear, and anything shaped
    like a DR key or signing secret."""
    if not text:
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        redacted = _KEY_PATTERN.sub(_redact_pair, text)
    else:
        redacted = json.dumps(redact_data(parsed), ensure_ascii=False) if isinstance(parsed, dict | list) else text
    for secret in sorted({*_configured_secrets(), *(s for s in secrets if s and len(s) >= 8)}, key=len, reverse=True):
        redacted = redacted.replace(secret, REDACTED)
    return _BEARER.sub(REDACTED, redacted)


def _redact_pair(match: re.Match) -> str:
    return f'{match["head"]}"{REDACTED}"' if is_secret_key(match["key"]) else match.group(0)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if is_secret_key(name) or "cookie" in name.lower() else value for name, value in headers.items()
    }


def _configured_secrets() -> list[str]:
    return [secret for secret in (settings.DR_SECRET_KEY, *settings.DR_WEBHOOK_SECRETS) if len(secret) >= 8]
