"""Loaded as a plugin before Django starts (pyproject: -p tests.environment): tests run the
development configuration with the sandbox mounted."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DR_SANDBOX", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
