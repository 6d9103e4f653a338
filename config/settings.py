"""Settings, read from the environment (see the README for every variable).

Development values exist only when DJANGO_DEBUG=1; anything else is a production deployment and
must say what it needs.
"""

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, overload
from urllib.parse import urljoin

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.observability import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


@overload
def env_number(name: str, default: int) -> int: ...
@overload
def env_number(name: str, default: float, cast: Callable[[str], float]) -> float: ...
def env_number(name: str, default: float, cast: Callable[[str], float] = int) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as "60/minute" (per second, minute, hour or day)."""
    raw = (os.environ.get(name) or "").strip() or default
    if not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", raw):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 60/minute (per second, minute, hour or day), got {raw!r}"
        )
    return raw


DEBUG = env_bool("DJANGO_DEBUG", False)

# Without it the web, worker and beat processes refuse to start and `check` fails (config/startup.py);
# commands that only read code, such as makemigrations, still run.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "dev-only-secret-key-never-use-in-production-0123456789abcdefghij"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as our own static files (no CDN)
    "django_fsm_log",
    "django_countries",
    "import_export",
    "axes",
    "core",
    "digitalriver",
    "catalog",
    "commerce",
    "fulfillment",
    "desk",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its 429 page.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # Development serves static files through runserver; production through whitenoise.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        # Plain-text emails (templates/emails/*.txt, operations/alert_email.txt): nothing is HTML-escaped,
        # so a tracking link keeps its "&" and O'Brien stays O'Brien. HTML is rendered by the engine above.
        "NAME": "text",
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"autoescape": False},
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        # Off by default: the check is a SELECT 1 before the first query of every request and job,
        # which in a burst doubled a webhook's statements and cost about four transactions per
        # order (issue 14). Without it, a connection that died (a database restart) fails the one
        # request or job that finds it, and is closed after it: DR delivers the webhook again and
        # the sweeps take the event or instruction over (tests/core/test_database_connections.py).
        conn_health_checks=env_bool("DATABASE_HEALTH_CHECKS", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web thread read while a background job writes; IMMEDIATE takes the write lock
    # at BEGIN so two writers queue on the busy timeout instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- sign-in: password guessing is locked out (django-axes) --------------------------------------
# The axes backend comes first and refuses a locked-out sign-in before any password is checked; it
# needs the request, which the admin's login passes (tests sign in with force_login, or
# client.login(request=HttpRequest(), ...)). DRF's token and session auth do not call authenticate().
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that pair out for
# AXES_COOLOFF_MINUTES; a success resets the count. The address is REMOTE_ADDR: behind a proxy that is
# the proxy's, so the lockout is then per username.
AXES_FAILURE_LIMIT = env_number("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_number("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_COOLOFF_MESSAGE = (
    f"Too many failed sign-ins: this username is locked for {AXES_COOLOFF_TIME.total_seconds() / 60:g} minutes "
    "from your address. Try again later, or ask an administrator to unlock it."
)
# Unlocking is `manage.py axes_reset_username USERNAME` (or axes_reset_ip_username IP USERNAME). Axes's
# admin pages are off: their "clean up" action fails outside a sign-in (axes 8.3).
AXES_ENABLE_ADMIN = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- production hardening (python manage.py check --deploy) -------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.DjangoModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per signed-in user, and per address for anonymous callers (every /api/ endpoint answers those
    # 401 first). Counted in the cache: the local-memory one, so per web process. Views that must not
    # be throttled set throttle_classes = [] (DR's webhook deliveries: DR retries).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("API_THROTTLE_ANON", "60/minute"),
        "user": env_rate("API_THROTTLE_USER", "1200/minute"),
    },
    # Proxies in front that append to X-Forwarded-For; 0 trusts none (the address is REMOTE_ADDR).
    "NUM_PROXIES": env_number("API_NUM_PROXIES", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Digital River fulfillment back office",
    "DESCRIPTION": "SKUs, orders, cancellations and shipments for Digital River coordinated fulfillments.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs describe the back office's API: for its users, not the public.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ loads Swagger UI from this server's static files (drf-spectacular-sidecar), pinned with
    # the package: it works offline and runs no third-party script on the admin's origin.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operation ids and tags are named after the path below /api/; the webhook, outside it, names its own.
    "SCHEMA_PATH_PREFIX": r"/api/",
    # Two models have a "state": name each enum after its model so the schema keeps both.
    "ENUM_NAME_OVERRIDES": {
        "OrderStateEnum": "commerce.models.Order.State",
        "CancellationRequestStateEnum": "fulfillment.models.CancellationRequest.State",
    },
}

# Transitions are logged by django-fsm-log, but for the pipeline's routine ones (core/fsm_log.py).
DJANGO_FSM_LOG_STORAGE_METHOD = "core.fsm_log.RoutineTransitionsUnlogged"

# --- background jobs ----------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Without a broker, jobs run in this process right after the transaction commits: "thread" hands
# them to one background thread so a request never waits for them; tests use "inline".
TASKS_MODE = "celery" if CELERY_BROKER_URL else "thread"
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# A worker takes no more jobs than it runs, and acknowledges each when done. A job whose pool process
# dies goes back to the queue at once; one whose whole worker is killed stays with Redis until the
# visibility timeout (an hour) and only then runs again, as a no-op by then: what brings a dead
# worker's events and instructions back quickly is the sweeps below, not the broker.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless this is
# set; it then closes it every this many tasks, and config/celery.py closes it like Django does
# after a request (older than CONN_MAX_AGE, or broken).
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_IGNORE_RESULT = True
# One queue per kind of work, so that a burst of one kind (five hundred events after a sale starts)
# does not hold the others behind it: a worker started without -Q consumes every queue below, and
# the Redis transport takes from them in turn; a deployment can also give a kind workers of its own
# (`celery -A config worker -Q instructions`), as long as some worker takes "sweeps" (below). Daily
# jobs go to the default queue.
CELERY_TASK_QUEUES = (Queue("events"), Queue("instructions"), Queue("emails"), Queue("sweeps"), Queue("periodic"))
CELERY_TASK_DEFAULT_QUEUE = "periodic"
CELERY_TASK_ROUTES = {
    "digitalriver.tasks.process_webhook_event": {"queue": "events"},
    "digitalriver.tasks.process_webhook_events": {"queue": "events"},
    "digitalriver.tasks.send_instruction": {"queue": "instructions"},
    "fulfillment.tasks.send_notifications": {"queue": "emails"},
    "digitalriver.tasks.sweep_outbox": {"queue": "sweeps"},
    "digitalriver.tasks.sweep_inbox": {"queue": "sweeps"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# The sweeps take over what a dead worker held once its lease has run out (DR_*_LEASE_SECONDS below),
# and lost jobs: run this often, a killed worker's claims are taken over within lease + interval
# (20 s with the defaults; tests/reliability/test_worker_kill.py). When nothing is due a sweep is one
# indexed query. They have a queue of their own (CELERY_TASK_QUEUES above), so that a backlog of
# ordinary jobs does not hold them up; a sweep still waiting when the next one is sent is dropped
# (expires), not piled up.
OUTBOX_SWEEP_SECONDS = env_number("DR_OUTBOX_SWEEP_SECONDS", 5)
INBOX_SWEEP_SECONDS = env_number("DR_INBOX_SWEEP_SECONDS", 5)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "outbox-sweep": {
        "task": "digitalriver.tasks.sweep_outbox",
        "schedule": OUTBOX_SWEEP_SECONDS,
        "options": {"expires": OUTBOX_SWEEP_SECONDS},
    },
    "inbox-sweep": {
        "task": "digitalriver.tasks.sweep_inbox",
        "schedule": INBOX_SWEEP_SECONDS,
        "options": {"expires": INBOX_SWEEP_SECONDS},
    },
    "catalog-drift-daily": {"task": "catalog.tasks.check_drift_all", "schedule": crontab(hour=3, minute=0)},
    "notifications-sweep": {"task": "fulfillment.tasks.sweep_notifications", "schedule": 60},
    "operations-alert": {"task": "operations.tasks.send_operations_alert", "schedule": 60},
    "orders-reconcile-daily": {"task": "fulfillment.tasks.reconcile_orders", "schedule": crontab(hour=4, minute=0)},
    "records-prune-daily": {"task": "operations.tasks.prune_records", "schedule": crontab(hour=5, minute=0)},
}

# --- Digital River ------------------------------------------------------------------------------
DR_SANDBOX = env_bool("DR_SANDBOX", DEBUG)
if DR_SANDBOX:
    # The emulator, its tables, the demo and `serve` exist only where it is wanted (never in production).
    INSTALLED_APPS.append("sandbox")
SANDBOX_SECRET_KEY = "sk_test_sandbox_0000000000000000"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_0000000000000000"
DR_API_BASE_URL = os.environ.get("DR_API_BASE_URL") or (
    "http://127.0.0.1:8000/sandbox/api" if DR_SANDBOX else "https://api.digitalriver.com"
)
# Where the sandbox delivers events unless a webhook was registered with POST /webhooks: this
# server's own inbox, found beside the sandbox's API.
SANDBOX_DEFAULT_WEBHOOK_URL = urljoin(DR_API_BASE_URL, "/webhooks/digitalriver/")
DR_SECRET_KEY = os.environ.get("DR_SECRET_KEY") or (SANDBOX_SECRET_KEY if DR_SANDBOX else "")
DR_API_VERSION = os.environ.get("DR_API_VERSION", "")
DR_WEBHOOK_SECRETS = env_list("DR_WEBHOOK_SECRETS", [SANDBOX_WEBHOOK_SECRET] if DR_SANDBOX else [])
DR_WEBHOOK_TOLERANCE_SECONDS = env_number("DR_WEBHOOK_TOLERANCE_SECONDS", 300)
DR_WEBHOOK_MAX_BYTES = 1024 * 1024
DR_RATE_LIMIT_PER_SECOND = env_number("DR_RATE_LIMIT_PER_SECOND", 25.0, float)
DR_TIMEOUT_SECONDS = env_number("DR_TIMEOUT_SECONDS", 10.0, float)
DR_UPSTREAM_APPLICATION_ID = "dr-fulfillment-backoffice/0.1.0"
# Safe calls (GET, PUT, DELETE) are retried by the client this many times; POST never is.
DR_CLIENT_MAX_RETRIES = env_number("DR_CLIENT_MAX_RETRIES", 3)
DR_CLIENT_RETRY_AFTER_CAP_SECONDS = 30

# The outbox: exponential backoff with jitter between attempts, then "failed" for an operator.
DR_OUTBOX_BACKOFF_BASE_SECONDS = env_number("DR_OUTBOX_BACKOFF_BASE_SECONDS", 30.0, float)
DR_OUTBOX_BACKOFF_CAP_SECONDS = env_number("DR_OUTBOX_BACKOFF_CAP_SECONDS", 3600.0, float)
DR_OUTBOX_MAX_ATTEMPTS = env_number("DR_OUTBOX_MAX_ATTEMPTS", 10)
# A sender's or a worker's claim on an instruction or a webhook event lasts this long and is renewed
# while it works (every third of it): a worker that dies gives its claims back within this time, and
# the next sweep takes them over. 15 s (renewed every 5 s) keeps a killed worker's work within 30 s
# of its death with the 5 s sweeps; a live worker loses a claim only if two renewals in a row fail.
DR_OUTBOX_LEASE_SECONDS = env_number("DR_OUTBOX_LEASE_SECONDS", 15.0, float)
DR_INBOX_LEASE_SECONDS = env_number("DR_INBOX_LEASE_SECONDS", 15.0, float)
if DR_OUTBOX_LEASE_SECONDS <= 0 or DR_INBOX_LEASE_SECONDS <= 0:
    raise ImproperlyConfigured("DR_OUTBOX_LEASE_SECONDS and DR_INBOX_LEASE_SECONDS must be positive")

# The catalog: edits to a pushed SKU push it again (after a short wait that lets a burst of edits
# become one push) unless automatic pushes are off.
CATALOG_AUTO_PUSH = env_bool("CATALOG_AUTO_PUSH", True)
CATALOG_PUSH_DELAY_SECONDS = env_number("CATALOG_PUSH_DELAY_SECONDS", 2.0, float)

# Returns through DR's warehouse are ours to refund once the goods are back: offered to customer
# service pre-filled, or issued as soon as the warehouse accepts them when this is on.
REFUND_RETURNS_AUTOMATICALLY = env_bool("REFUND_RETURNS_AUTOMATICALLY", False)

# --- email -----------------------------------------------------------------------------------------
# Customers hear about shipments, backorders and cancellations; operations about failed captures.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "core.mail.SummaryEmailBackend"  # one line per email in the log: "email to x: subject"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_number("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "orders@example.com")
OPERATIONS_EMAIL = os.environ.get("OPERATIONS_EMAIL", "operations@example.com")
# Makes the links in emails absolute, e.g. https://backoffice.example.com; empty leaves them as paths.
BACKOFFICE_BASE_URL = os.environ.get("BACKOFFICE_BASE_URL", "").rstrip("/")
# Failures are gathered into one digest at most this often, so an outage sends one message.
OPERATIONS_ALERT_INTERVAL_MINUTES = env_number("OPERATIONS_ALERT_INTERVAL_MINUTES", 15)

# Bodies kept in the call log are cut to this many characters.
DR_API_CALL_BODY_LIMIT = 20_000

# Processed webhook events, the call log and the attempts of done instructions older than this are
# pruned daily (operations.retention); the dashboard's charts need the last 7 days.
RETENTION_DAYS = env_number("RETENTION_DAYS", 90)
if RETENTION_DAYS < 7:
    raise ImproperlyConfigured(f"RETENTION_DAYS must be at least 7 (the dashboard's week), got {RETENTION_DAYS}")

# /metrics for Prometheus answers only to this bearer token; unset, /metrics is 404.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Unhandled errors of requests and Celery tasks go to Sentry when set (no personal data is sent).
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
sentry_init(SENTRY_DSN, environment=os.environ.get("SENTRY_ENVIRONMENT", ""))

LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()
# Chatty loggers speak only at DEBUG: a trace per background task, the request line of every
# webhook and sandbox call the server makes to itself, the reloader and axes announcing themselves.
QUIET_UNLESS_DEBUG = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery.app.trace": {"level": QUIET_UNLESS_DEBUG},
        "django.server": {"level": QUIET_UNLESS_DEBUG},
        "django.utils.autoreload": {"level": QUIET_UNLESS_DEBUG},
        "axes": {"level": QUIET_UNLESS_DEBUG},
    },
}
