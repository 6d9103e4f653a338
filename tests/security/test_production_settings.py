"""Production settings, seen from outside: a fresh process with the production environment answers
plain HTTP with a redirect (except /healthz, which load balancers probe over HTTP), sends HSTS with
subdomains and preload, marks its cookies Secure, refuses framing, and has no /sandbox/."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "backoffice.example.com"
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k3y-for-the-security-suite-only-5a1b9c7d2e4f6a8b0c1d3e5f7a9b2c4d6e8f0a1b",
    "DJANGO_ALLOWED_HOSTS": HOST,
    "DR_SECRET_KEY": "sk_live_placeholder_0000",
    "DR_WEBHOOK_SECRETS": "whsec_placeholder_0000",
}

PROBE = f"""
import json
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.urls import Resolver404, resolve

# The static manifest exists once a deploy has run collectstatic; headers do not depend on it.
plain = {{"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
override_settings(STORAGES={{**settings.STORAGES, "staticfiles": plain}}).enable()
client = Client(HTTP_HOST={HOST!r})
out = {{}}

def hit(name, path, secure):
    r = client.get(path, secure=secure, HTTP_ACCEPT="application/json")
    out[name] = {{
        "status": r.status_code,
        "location": r.get("Location", ""),
        "hsts": r.get("Strict-Transport-Security", ""),
        "xfo": r.get("X-Frame-Options", ""),
        "nosniff": r.get("X-Content-Type-Options", ""),
        "cookies": {{
            k: {{"secure": bool(v["secure"]), "httponly": bool(v["httponly"])}} for k, v in r.cookies.items()
        }},
    }}

for path in ("/admin/login/", "/api/orders/", "/api/schema/", "/webhooks/digitalriver/", "/healthz"):
    hit("http " + path, path, False)
hit("https /admin/login/", "/admin/login/", True)
hit("https /healthz", "/healthz", True)
for path in ("/sandbox/", "/sandbox/api/skus", "/sandbox/api/orders/1"):
    hit("https " + path, path, True)
    try:
        resolve(path)
        out["resolves " + path] = True
    except Resolver404:
        out["resolves " + path] = False

def set_session(request):
    request.session["probe"] = 1
    return HttpResponse()

with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"):
    request = RequestFactory().get("/", secure=True, HTTP_HOST={HOST!r})
    cookie = SessionMiddleware(set_session)(request).cookies[settings.SESSION_COOKIE_NAME]
    out["session cookie"] = {{"secure": bool(cookie["secure"]), "httponly": bool(cookie["httponly"])}}
print("PROBE" + json.dumps(out))
"""


def run_manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    database = tmp_path_factory.mktemp("prod") / "db.sqlite3"
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{database}"}
    result = run_manage("shell", "--no-imports", "-c", PROBE, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROBE"))
    return json.loads(line.removeprefix("PROBE"))


@pytest.mark.parametrize("path", ["/admin/login/", "/api/orders/", "/api/schema/", "/webhooks/digitalriver/"])
def test_plain_http_is_redirected_to_https(production, path):
    answer = production[f"http {path}"]
    assert answer["status"] == 301
    assert answer["location"] == f"https://{HOST}{path}"


def test_healthz_answers_over_plain_http(production):
    assert production["http /healthz"]["status"] == 200
    assert production["http /healthz"]["location"] == ""


def test_hsts_with_subdomains_and_preload_for_a_year(production):
    header = production["https /admin/login/"]["hsts"]
    directives = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")}
    assert set(directives) == {"max-age", "includesubdomains", "preload"}
    assert int(directives["max-age"].split("=")[1]) >= 31_536_000  # preload lists require a year


def test_framing_is_refused_and_types_are_not_sniffed(production):
    for name in ("https /admin/login/", "https /healthz"):
        assert production[name]["xfo"] == "DENY"
        assert production[name]["nosniff"] == "nosniff"


def test_cookies_are_secure(production):
    csrf = production["https /admin/login/"]["cookies"]["csrftoken"]
    assert csrf["secure"] is True
    assert production["session cookie"] == {"secure": True, "httponly": True}


@pytest.mark.parametrize("path", ["/sandbox/", "/sandbox/api/skus", "/sandbox/api/orders/1"])
def test_sandbox_is_not_routed(production, path):
    assert production[f"resolves {path}"] is False
    assert production[f"https {path}"]["status"] == 404


@pytest.mark.parametrize(("switch", "expected"), [("0", "NOT ROUTED"), ("1", "ROUTED")])
def test_dr_sandbox_alone_decides_whether_the_sandbox_is_routed_in_development(tmp_path, switch, expected):
    env = {"DJANGO_DEBUG": "1", "DR_SANDBOX": switch, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    script = (
        "from django.urls import Resolver404, resolve\n"
        "try:\n    resolve('/sandbox/api/skus'); print('ROUTED')\n"
        "except Resolver404:\n    print('NOT ROUTED')"
    )
    result = run_manage("shell", "--no-imports", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_check_deploy_has_nothing_to_say(tmp_path):
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
