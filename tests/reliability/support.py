"""What the chaos suite's modules share: the services they need (skipped without them), and a
PostgreSQL database of each run's own on DATABASE_URL's server, migrated, for a driver that runs in a
process of its own (separate processes must see committed data, so pytest's test database cannot be
used)."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")

MARKS = [
    pytest.mark.chaos,
    pytest.mark.skipif(
        urlparse(DATABASE_URL).scheme not in ("postgres", "postgresql", "pgsql"),
        reason="the chaos suite needs PostgreSQL: set DATABASE_URL=postgres://…",
    ),
    pytest.mark.skipif(not BROKER_URL, reason="the chaos suite needs a Celery broker: set CELERY_BROKER_URL"),
]


def run_database_url(suffix: str) -> str:
    """DATABASE_URL's database name with ``_<suffix>`` appended (``test`` becomes ``test_chaos``)."""
    parsed = urlparse(DATABASE_URL)
    name = (parsed.path.lstrip("/") or "dr") + f"_{suffix}"
    return parsed._replace(scheme="postgres", path=f"/{name}").geturl()


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def driver_environment(url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_", "DATABASE_"))}
    env.update(DJANGO_DEBUG="1", DR_SANDBOX="1", DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings")
    return env


def fresh_database(url: str) -> None:
    """Drop what an earlier run left, create the database and migrate it."""
    sys.path.insert(0, str(ROOT))
    from bench.common import ensure_database

    drop_database(url)
    ensure_database(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=driver_environment(url),
        check=True,
        capture_output=True,
    )
