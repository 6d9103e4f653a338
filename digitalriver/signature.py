"""Verify the DigitalRiver-Signature header.

DR documents only "a signed timestamp and signature(s)". Two readings exist in public material and
we accept both:

* ``"<timestamp>, <signature>"`` (DR's own Salesforce Commerce Cloud cartridge), and
* ``"t=<timestamp>,v0=<signature>[,v0=<signature>…]"``.

Either way the signature is HMAC-SHA256, keyed with the endpoint secret, over
``<timestamp>.<raw body>``, written in base64 or hex.
"""

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

#: A Unix time, ASCII digits only: ``str.isdigit`` also accepts "²" and friends, which ``int()``
#: refuses, and an unbounded length would overflow the arithmetic below. DR does not document the
#: unit: 13 digits are read as milliseconds, fewer as seconds.
_TIMESTAMP = re.compile(r"[0-9]{1,13}")
_MILLISECOND_DIGITS = 13
#: More signatures than this in one header is not a rotation, it is someone guessing.
MAX_SIGNATURES = 8


class SignatureError(Exception):
    """The request is not provably from DR; the message is safe to return to the caller."""


@dataclass(frozen=True)
class ParsedSignature:
    timestamp: str
    signatures: tuple[bytes, ...]


def parse_header(header: str) -> ParsedSignature:
    parts = [part.strip() for part in header.split(",") if part.strip()]
    if not parts:
        raise SignatureError("empty DigitalRiver-Signature header")
    timestamp = None
    encoded: list[str] = []
    for index, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if sep and key.strip() == "t":
            timestamp = value.strip()
        elif sep and key.strip().startswith("v") and key.strip()[1:].isdigit():
            encoded.append(value.strip())
        elif index == 0 and _TIMESTAMP.fullmatch(part):
            timestamp = part
        else:
            # A base64 signature may end in '=' padding: everything that is not a named part is one.
            encoded.append(part)
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("signature header has no timestamp")
    if len(encoded) > MAX_SIGNATURES:
        raise SignatureError("signature header has too many signatures")
    decoded = tuple(sig for sig in (_decode(value) for value in encoded) if sig is not None)
    if not decoded:
        raise SignatureError("signature header has no signature")
    return ParsedSignature(timestamp=timestamp, signatures=decoded)


def _decode(value: str) -> bytes | None:
    """Return the 32-byte digest written in hex or base64, or None if it is neither."""
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    padded = value + "=" * (-len(value) % 4)  # tolerate stripped padding
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return None
    return raw if len(raw) == hashlib.sha256().digest_size else None


def timestamp_seconds(timestamp: str) -> float:
    """The header's timestamp as Unix seconds, whether it was written in seconds or milliseconds."""
    value = int(timestamp)
    return value / 1000 if len(timestamp) == _MILLISECOND_DIGITS else value


def compute(secret: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).digest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value in the first form (the one the sandbox sends); used by tests and benchmarks."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return f"{ts}, {base64.b64encode(compute(secret, ts, body)).decode('ascii')}"


def verify(
    header: str | None,
    body: bytes,
    *,
    secrets: Iterable[str],
    tolerance_seconds: int,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless one signature matches one secret within the time tolerance."""
    if not header:
        raise SignatureError("missing DigitalRiver-Signature header")
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        raise SignatureError("no webhook signing secret is configured")
    parsed = parse_header(header)
    now = time.time() if now is None else now
    age = now - timestamp_seconds(parsed.timestamp)
    if age > tolerance_seconds:
        raise SignatureError("signature timestamp is too old")
    if age < -tolerance_seconds:
        raise SignatureError("signature timestamp is in the future")
    matched = False
    for secret in secrets:
        expected = compute(secret, parsed.timestamp, body)
        for candidate in parsed.signatures:
            # Compare against every pair so the time taken does not depend on which one matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature does not match")
