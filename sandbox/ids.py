"""DR-style identifiers."""

import secrets
import uuid


def numeric_id() -> str:
    """Twelve digits like DR's order and item ids ("231388420336"): they end in a site code, 336."""
    return f"{secrets.randbelow(9) + 1}{secrets.randbelow(10**8):08d}336"


def uuid_id() -> str:
    return str(uuid.uuid4())


def prefixed_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4()}"
