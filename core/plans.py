"""Plans shown before they are executed: a service answers what it would do (or why not) without
writing, the agent confirms what was shown, and the service executes it."""

import hashlib
import json


def plan_fingerprint(content: object) -> str:
    """A short digest of what a plan would do; equal plans have equal fingerprints."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
