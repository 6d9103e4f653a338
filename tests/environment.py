"""Loaded as a plugin before Django starts (pyproject: -p tests.environment): tests run the
development configuration with the sandbox mounted."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DR_SANDBOX", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
# The API's throttles: high enough that the heavy API tests (the schema fuzzing) never meet them;
# tests/security/test_api_throttling.py proves the 429 at low rates.
os.environ.setdefault("API_THROTTLE_ANON", "100000/minute")
os.environ.setdefault("API_THROTTLE_USER", "100000/minute")
