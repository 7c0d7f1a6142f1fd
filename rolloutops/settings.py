"""Settings for rolloutops, read from the environment (see .env.example)."""
from datetime import timedelta
from pathlib import Path
import os

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from rolloutops.local_secret import persisted_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ROLLOUTOPS_VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


# Embedded: no DATABASE_URL, so SQLite in the project folder and a folder-based broker, for
# one machine (the demo, the tests on a bare machine). Production sets DATABASE_URL.
EMBEDDED = "DATABASE_URL" not in os.environ
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # A shared database means a real deployment, DEBUG or not: never a key anyone could know.
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY is required when DATABASE_URL is set (with DEBUG on or off)")
    SECRET_KEY = persisted_secret(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "ninja",  # so /api/v1/docs serves its bundled Swagger UI, not one from a CDN
    "axes",  # sign-in throttling
    "rolloutops",
    "agents",
    "rollouts",
    "telemetry",
    "escalations",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the request (sessions, CSRF, views): rolloutops/inputs.py.
    "rolloutops.middleware.HostileInput",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "rolloutops.middleware.AuditContext",
    "rolloutops.middleware.LoginRequiredForPages",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "rolloutops.middleware.UserTimezone",
    "rolloutops.middleware.NotFoundPages",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "rolloutops.wsgi.application"

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
                "console.context_processors.navigation",
                "console.context_processors.enums",
                "rolloutops.timezones.time_zone",
                "rolloutops.pages.refresh",
            ],
        },
    }
]

# SQLite is the embedded default. A web server and a Celery worker write at once, so:
# WAL lets readers proceed beside a writer, IMMEDIATE takes the write lock at BEGIN (no
# lock-upgrade deadlock that surfaces as "database is locked"), and the timeout waits.
_default_sqlite = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", _default_sqlite),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if env_bool("DB_TRANSACTION_POOLING", False) and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Behind PgBouncer in transaction mode (docs/scaling.md): no server-side cursors, whose named
    # cursor outlives the statement's transaction.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True


def _prepare_threshold(pooling: bool) -> int | None:
    """psycopg's prepare_threshold: after how many runs a statement of our server-binding cursors
    (rolloutops/db.py: the claim, ingestion's insert) is prepared, so that the server plans it once
    a connection (docs/scaling.md, "Prepared statements"). Django's own cursors never prepare.
    Off behind a transaction pooler unless DB_PREPARE_THRESHOLD says otherwise: PgBouncer keeps
    prepared statements from 1.21 on, and only with max_prepared_statements set."""
    raw = os.environ.get("DB_PREPARE_THRESHOLD", "").strip().lower()
    if raw in {"off", "none"} or (raw == "" and pooling):
        return None
    threshold = env_int("DB_PREPARE_THRESHOLD", 5)
    if threshold < 0:
        raise ImproperlyConfigured(f"DB_PREPARE_THRESHOLD must be a count >= 0 or 'off', got {raw!r}")
    return threshold


if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _prepare_threshold(
        env_bool("DB_TRANSACTION_POOLING", False))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so a real Celery worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / os.environ.get("SQLITE_TEST_NAME", "test_db.sqlite3"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sign-in throttling (django-axes): after SIGNIN_FAILURE_LIMIT failures for one username from
# one address, that pair is locked out for SIGNIN_LOCKOUT_MINUTES (counted from the lockout, not
# extended by attempts during it), and the correct password is refused meanwhile. Audited as
# auth.locked_out (rolloutops/signals.py); each failure stays audited as auth.login_failed.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "rolloutops.views.signin_locked_out"
AXES_VERBOSE = False  # the audit trail and our own log line say it once

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Our CSS and JS, and static/vendor/: htmx's morph extension and the partial plotly.js bundle
# (scripts/build-vendor). htmx itself comes with django-htmx.
STATICFILES_DIRS = [BASE_DIR / "static"]
# The installed apps' files through a finder that leaves out the ones no page loads
# (rolloutops/staticfiles.py: django-ninja's Redoc bundle, which names a CDN).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "rolloutops.staticfiles.InstalledAppsFinder",
]
# Production runs collectstatic and sets STATIC_MANIFEST=true (so does `manage.py demo`): hashed
# names, which WhiteNoise serves gzipped with a year's immutable caching.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", False)
# Web processes freeze their start-up heap out of the garbage collector's scans (rolloutops/heap.py).
GC_FREEZE = env_bool("GC_FREEZE", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# Production hardening: on unless DEBUG. `manage.py check --deploy` stays clean.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not (DEBUG or EMBEDDED))
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles and everything else from our own static
# files only: no inline script or style, no eval (htmx runs with allowEval off, templates/base.html),
# no CDN. Every page is checked for violations in the browser tests (tests/browser/test_pages.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Plotly draws its toolbar icons and exports images as data: URLs.
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SESSION_COOKIE_HTTPONLY = True

# Celery. The embedded default is kombu's filesystem transport: a real worker and beat in
# other processes, with nothing but folders on this machine. Production: Redis or RabbitMQ.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Live stages: evaluate every guardrail and roll back on a significant breach (docs/architecture.md,
    # "How a batch of events travels").
    "evaluate-guardrails": {"task": "rollouts.evaluate_guardrails_all", "schedule": env_int("GUARDRAIL_INTERVAL_SECONDS", 30)},
    # Safety net: fold any events whose fold task was lost (ingestion also triggers folds).
    "fold-events": {"task": "telemetry.fold_events", "schedule": 15},
    # Claims whose lease lapsed go back to the queue.
    "sweep-claim-leases": {"task": "escalations.sweep_leases", "schedule": 30},
    # Tickets past their SLA are announced once each.
    "notify-sla-breaches": {"task": "escalations.notify_sla_breaches", "schedule": 60},
    # Safety net: link audit entries whose on-commit sealing request was lost (docs/audit.md).
    "seal-audit": {"task": "rolloutops.seal_audit", "schedule": env_int("AUDIT_SEAL_INTERVAL_SECONDS", 10)},
    # Raw events past EVENT_RETENTION_DAYS go (a month's partition at a time on PostgreSQL); rollups stay.
    "apply-retention": {"task": "telemetry.apply_retention", "schedule": env_int("RETENTION_INTERVAL_SECONDS", 86400)},
    # A keyed checkpoint of the audit chain's head, written outside the database.
    "checkpoint-audit": {"task": "rolloutops.checkpoint_audit",
                         "schedule": env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 300)},
}

# The audit chain's key (HMAC of new entries and of checkpoints). It must live outside the
# database, or whoever can rewrite the table could recompute the chain. Production sets it (and
# lists retired keys, comma-separated, after a rotation so older entries still verify); without
# it, one is generated under var/ on first use, with a warning (rolloutops/audit_keys.py).
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
# Each process asks a worker to seal at most once per this window (entries are sealed within ~2x).
AUDIT_SEAL_DELAY_SECONDS = env_int("AUDIT_SEAL_DELAY_MS", 1000) / 1000
AUDIT_RETIRED_KEYS = env_list("AUDIT_RETIRED_KEYS", [])
# Checkpoints go to the log (one JSON line each) and, when set, are appended to this file too.
AUDIT_CHECKPOINT_FILE = os.environ.get("AUDIT_CHECKPOINT_FILE",
                                       str(VAR_DIR / "audit-checkpoints.jsonl") if EMBEDDED else "")
AUDIT_CHECKPOINT_WEBHOOK = env_bool("AUDIT_CHECKPOINT_WEBHOOK", False)

# Product defaults: overridable per deployment.
ROLLOUTOPS = {
    "EVALUATION_TTL_DAYS": env_int("EVALUATION_TTL_DAYS", 90),
    # A checklist item added later blocks versions evaluated before it only after this many days
    # (agents/models.py, ChecklistItem; 0: at once).
    "CHECKLIST_GRACE_DAYS": env_int("CHECKLIST_GRACE_DAYS", 7),
    "CLAIM_LEASE_SECONDS": env_int("CLAIM_LEASE_SECONDS", 15 * 60),
    "SLA_SECONDS": {
        "P1": env_int("SLA_P1_SECONDS", 15 * 60),
        "P2": env_int("SLA_P2_SECONDS", 60 * 60),
        "P3": env_int("SLA_P3_SECONDS", 4 * 60 * 60),
        "P4": env_int("SLA_P4_SECONDS", 24 * 60 * 60),
    },
    "GUARDRAIL_INTERVAL_SECONDS": env_int("GUARDRAIL_INTERVAL_SECONDS", 30),
    # How often each page's live regions ask for fresh figures (docs/pages.md).
    "REFRESH_SECONDS": {"rollout": 5, "shadow": 10, "overview": 10, "approvals": 15, "queue": 5, "mine": 15},
    # Raw events: how old an occurred_at may be when it arrives (and how long raw events are kept),
    # and how far ahead of our clock (runtimes' clocks drift a little).
    "EVENT_RETENTION_DAYS": env_int("EVENT_RETENTION_DAYS", 30),
    "EVENT_MAX_FUTURE_SECONDS": env_int("EVENT_MAX_FUTURE_SECONDS", 300),
    "WEBHOOK_URLS": env_list("WEBHOOK_URLS", []),
    "WEBHOOK_SECRET": os.environ.get("WEBHOOK_SECRET", ""),
}

# The routing cache must be shared by every web process and the workers, so that a rollback
# invalidates it everywhere at once: Redis in production, a folder on one machine otherwise.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    # Short socket timeouts: a cache that hangs must cost a request milliseconds, not seconds,
    # before it falls back to the database (rolloutops/cache.py).
    _cache_timeout = env_int("CACHE_SOCKET_TIMEOUT_MS", 500) / 1000
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "rolloutops",
                          "OPTIONS": {"socket_connect_timeout": _cache_timeout, "socket_timeout": _cache_timeout}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

# After a cache failure, reads and writes skip the cache (straight to the database) this long.
CACHE_FAILURE_BACKOFF_SECONDS = env_int("CACHE_FAILURE_BACKOFF_MS", 1000) / 1000

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 16 * 1024 * 1024)  # 5,000 events a batch

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "rolloutops.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
    },
}

# WhiteNoise warns when STATIC_ROOT is absent; before collectstatic (dev, tests) it serves from finders.
import warnings  # noqa: E402

# The warning is attributed to the caller (Django's handler), so match it by message, not module.
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
