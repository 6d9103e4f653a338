import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.db import DatabaseError

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_in_process_jobs(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "in-process"}


def test_healthz_is_503_when_the_database_is_down(client):
    with mock.patch("core.views.connection.cursor", side_effect=DatabaseError("gone")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down: DatabaseError"


def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"].startswith("down:")


def run_manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k3y-for-the-deploy-check-only-5a1b9c7d2e4f6a8b0c1d3e5f7a9b2c4d6e8f0a1b",
    "DJANGO_ALLOWED_HOSTS": "backoffice.example.com",
    "DR_SECRET_KEY": "sk_live_placeholder",
    "DR_WEBHOOK_SECRETS": "whsec_placeholder",
}


def test_check_deploy_is_clean_with_production_values():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    deploy_check = run_manage("check", "--deploy", **env)
    assert deploy_check.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in deploy_check.stderr + deploy_check.stdout
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_"))}
    web = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )
    assert web.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in web.stderr
    # Commands that only read code still run, e.g. for a migration check in a build step.
    assert run_manage("makemigrations", "--check", "--dry-run", **env).returncode == 0


def test_sandbox_is_off_and_dr_is_real_by_default_in_production():
    script = "from django.conf import settings as s; print(s.DR_SANDBOX, s.DR_API_BASE_URL, s.DEBUG)"
    result = run_manage("shell", "--no-imports", "-c", script, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "https://api.digitalriver.com", "False"]


def test_the_api_schema_and_docs_are_for_signed_in_users(client, admin_client):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
    assert admin_client.get("/api/schema/").status_code == 200


def test_without_the_sandbox_no_sandbox_table_is_created_and_no_sandbox_url_answers(tmp_path):
    database = f"sqlite:///{tmp_path / 'production.sqlite3'}"
    migrated = run_manage("migrate", "--noinput", DATABASE_URL=database, **PRODUCTION)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    probe = (
        "from django.db import connection; from django.test import Client; "
        "print(sorted(connection.introspection.table_names()));"
        "client = Client(HTTP_HOST='backoffice.example.com');"
        "print([client.get(url, secure=True).status_code for url in ('/sandbox/', '/sandbox/api/skus')])"
    )
    result = run_manage("shell", "--no-imports", "-c", probe, DATABASE_URL=database, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    tables, statuses = result.stdout.strip().splitlines()[-2:]
    assert "catalog_sku" in tables and "digitalriver_webhookevent" in tables
    assert "sandbox_" not in tables
    assert statuses == "[404, 404]"
    # The roles are there too: applied after migrate, not by a data migration.
    roles = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.contrib.auth.models import Group; print(sorted(Group.objects.values_list('name', flat=True)))",
        DATABASE_URL=database,
        **PRODUCTION,
    )
    assert roles.stdout.strip() == "['Customer service', 'Merchandisers', 'Operations', 'Refunds']"
