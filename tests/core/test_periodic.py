"""The embedded mode's periodic sweeps run from a cold start, with no traffic to import anything."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.periodic import scheduled_jobs

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: every beat entry made due at once, each task's run recorded.
COLD_START = """
import json, time
from celery.signals import task_postrun
from django.conf import settings
from core.periodic import start_periodic_jobs

ran = set()
task_postrun.connect(lambda sender=None, **kw: ran.add(sender.name), weak=False)
settings.CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": 0.2} for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
}
stop = start_periodic_jobs(tick_seconds=0.1)
expected = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
deadline = time.monotonic() + 60
while not expected <= ran and time.monotonic() < deadline:
    time.sleep(0.1)
stop.set()
print(json.dumps(sorted(ran)))
"""


def test_a_cold_embedded_runner_runs_every_scheduled_job(tmp_path):
    database = f"sqlite:///{tmp_path / 'cold.sqlite3'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_"))},
        "DJANGO_DEBUG": "1",
        "DR_SANDBOX": "1",
        "DATABASE_URL": database,
        # Nothing answers here: the jobs that call DR fail at once, and a failed run is still a run.
        "DR_API_BASE_URL": "http://127.0.0.1:9/sandbox/api",
        "DR_TIMEOUT_SECONDS": "1",
    }
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    cold = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", COLD_START],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cold.returncode == 0, cold.stderr[-3000:]
    ran = json.loads(cold.stdout.strip().splitlines()[-1])
    assert ran == sorted({entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()})


def test_a_scheduled_job_naming_no_task_stops_the_start(settings):
    settings.CELERY_BEAT_SCHEDULE = {"typo": {"task": "fulfillment.tasks.no_such_task", "schedule": 60}}
    with pytest.raises(ImproperlyConfigured, match="the periodic job typo names no task"):
        scheduled_jobs()
