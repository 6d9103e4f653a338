"""What the chaos suite's modules share: the services they need (skipped without them), and a
PostgreSQL database of each run's own on DATABASE_URL's server, migrated, for a driver that runs in a
process of its own (separate processes must see committed data, so pytest's test database cannot be
used)."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def driver_run(driver: Path, name: str, args: list[str], *, timeout: int) -> Iterator[tuple[dict, Path]]:
    """Run a chaos driver on a fresh database of its own (``<DATABASE_URL's name>_<name>``) and
    yield its report with the folder of its logs; the database is dropped afterwards unless
    CHAOS_KEEP_DATABASE is set."""
    url = run_database_url(name)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    try:
        fresh_database(url)
        out = workdir / "report.json"
        command = [sys.executable, str(driver), "--database-url", url, "--broker-url", BROKER_URL, *args]
        command += ["--out", str(out), "--logs", str(workdir / "logs")]
        ran = subprocess.run(
            command, cwd=ROOT, env=driver_environment(url), capture_output=True, text=True, timeout=timeout
        )
        assert out.exists(), f"the driver wrote no report:\n{ran.stderr[-5000:]}"
        data = json.loads(out.read_text())
        assert "crashed" not in data, data.get("crashed")
        yield data, workdir
    finally:
        if os.environ.get("CHAOS_KEEP_DATABASE"):
            print(f"kept the run's database for a look: {url}")
        else:
            drop_database(url)
