"""Settings for AI Registry, read from the environment.

Local defaults just work (SQLite, a file cache, DEBUG on); production sets DJANGO_DEBUG=0,
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL and REDIS_URL. A bad or missing value
stops start-up with an ImproperlyConfigured error that names the variable.
"""

import ipaddress
import os
import re
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

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
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ImproperlyConfigured(f"{name} must be {bounds}, got {value}.")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as '100/min'."""
    value = os.environ.get(name, default).strip()
    count, _, period = value.partition("/")
    if not count.isdigit() or period[:1] not in {"s", "m", "h", "d"}:
        raise ImproperlyConfigured(
            f"{name} must look like '100/min' (a count, '/', and s, min, hour or day), "
            f"got {value!r}."
        )
    return value


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    # Only ever used with DEBUG on, on a developer's machine.
    SECRET_KEY = "django-insecure-local-development-only"
# Earlier secret keys, still accepted while a rotation settles (sessions, Idempotency-Key
# answers): comma-separated, newest first.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "registry_site",
    "fees_app",
    "models_app",
    "governance_app",
    "accounts_app",
    "benchmarks_app",
]

MIDDLEWARE = [
    # Outside the error shape, whose fallback answers replace the response: what leaves
    # carries the rate-limit state, a 429 included. It only adds headers.
    "registry_site.middleware.RateLimitHeadersMiddleware",
    # First to handle answers: errors under /api/ always leave in the error shape.
    "registry_site.middleware.ApiErrorShapeMiddleware",
    # ETag and 304 on the API's reads, over the final body.
    "registry_site.middleware.ApiConditionalGetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "registry_site.middleware.ClientIPMiddleware",
    "registry_site.middleware.NulCharacterMiddleware",
    "registry_site.middleware.IPAllowListMiddleware",
    "registry_site.middleware.RequestSizeLimitMiddleware",
    "registry_site.middleware.LoginRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "registry_site.middleware.PageRateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry_site.middleware.CSPMiddleware",
    # Last, so it is the first to see a view's exception: database or Redis down -> 503.
    "registry_site.middleware.DependencyFailureMiddleware",
]

if not DEBUG:
    # Production serves static files from the app (collectstatic first); runserver does in DEBUG.
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                      "whitenoise.middleware.WhiteNoiseMiddleware")

# CORS for the API (django-cors-headers), off unless CORS_ALLOWED_ORIGINS lists origins: a
# browser app on another origin may then call /api/ with a bearer token (never with this
# site's cookies: credentials stay off). Outermost, so refusals and errors carry it too.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
for _origin in CORS_ALLOWED_ORIGINS:
    if not re.fullmatch(r"https?://[^/\s?#]+", _origin):
        raise ImproperlyConfigured(
            f"CORS_ALLOWED_ORIGINS holds {_origin!r}: each origin is scheme://host[:port], "
            "such as https://app.example.com, with no path.")
if CORS_ALLOWED_ORIGINS:
    INSTALLED_APPS.append("corsheaders")
    MIDDLEWARE.insert(0, "corsheaders.middleware.CorsMiddleware")
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "content-disposition",
                      "idempotency-key", "if-match", "if-none-match", "range")
CORS_EXPOSE_HEADERS = ("Idempotent-Replayed", "Location", "ETag", "Last-Modified",
                       "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
                       "RateLimit-Reset", "Content-Disposition", "Content-Range")
CORS_PREFLIGHT_MAX_AGE = 3600

# `make bench` only: every answer carries X-Query-Count (benchmarks_app.middleware). Off, the
# middleware is not installed at all.
BENCH_QUERY_COUNT = env_bool("BENCH_QUERY_COUNT", False)
if BENCH_QUERY_COUNT:
    MIDDLEWARE.insert(0, "benchmarks_app.middleware.QueryCountMiddleware")

ROOT_URLCONF = "registry_site.urls"
WSGI_APPLICATION = "registry_site.wsgi.application"

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
                "registry_site.context_processors.roles",
            ],
        },
    },
]

# Database: SQLite file unless DATABASE_URL is set. SQLite runs IMMEDIATE transactions so
# that writers serialize (select_for_update is a no-op there).
_database_url = os.environ.get("DATABASE_URL", "").strip()
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    except Exception as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    else:
        # Django's backend, whose health check before a request's first query is skipped
        # for a connection that served a request without error within this many seconds
        # (registry_site.postgresql.base), in ms; 0 checks before every request, as Django does.
        if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
            DATABASES["default"]["ENGINE"] = "registry_site.postgresql"
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"]["HEALTH_CHECK_IDLE_SECONDS"] = env_int(
            "DATABASE_HEALTH_CHECK_IDLE_MS", 1000, minimum=0, maximum=60_000) / 1000
        # Prepared statements for the hot requests' statements (registry_site.compiled's
        # statement_cursor), once a connection has run one this many times; the ORM's own
        # cursors bind on the client and never prepare. 0 turns preparing off (a connection
        # pooler in transaction mode older than PgBouncer 1.21 cannot keep them).
        _prepare = env_int("DATABASE_PREPARE_THRESHOLD", 5)
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _prepare or None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Caches. Production needs Redis: rate limits and cached parameters must be one store for every
# worker and host (a per-process cache let each worker allow the full limit and let an
# emergency pause take minutes to reach every worker).
#   default    cached copies (parameters, statistics, metrics). With Redis it fails open: while
#              Redis is down, reads miss and the database answers (registry_site.cache).
#   throttles  rate-limit counters; raises when Redis is down (registry_site.throttling decides).
# Without REDIS_URL (development only) the copies are files under CACHE_DIR, so a
# `manage.py set_parameter` reaches a running `make run` server at once, and the counters are
# per process (Django's local-memory cache counts atomically and keeps expiry on incr).
_redis_url = os.environ.get("REDIS_URL", "").strip()
if _redis_url:
    if not _redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL must start with redis://, rediss:// or unix://, got {_redis_url!r}."
        )
    _redis_timeout = env_int("REDIS_TIMEOUT_MS", 500, minimum=1) / 1000
    _redis = {
        "LOCATION": _redis_url,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "ai-registry"),
        # A stopped or unreachable Redis costs each request at most this, not a hung worker.
        "OPTIONS": {"socket_connect_timeout": _redis_timeout, "socket_timeout": _redis_timeout},
    }
    CACHES = {
        "default": {"BACKEND": "registry_site.cache.FailOpenRedisCache", **_redis},
        "throttles": {"BACKEND": "registry_site.cache.RedisCache", **_redis},
    }
elif not DEBUG:
    raise ImproperlyConfigured(
        "REDIS_URL is required when DJANGO_DEBUG is off: without a shared Redis every worker "
        "counts rate limits on its own and a parameter change (an emergency pause) takes "
        "minutes to reach every worker. Set REDIS_URL=redis://host:6379/0."
    )
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": Path(os.environ.get("CACHE_DIR", BASE_DIR / ".cache")),
        },
        "throttles": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# API tokens.
TOKEN_TTL_SECONDS = env_int("TOKEN_TTL_SECONDS", 3600, minimum=1)
TOKEN_MAX_TTL_SECONDS = env_int("TOKEN_MAX_TTL_SECONDS", 7_776_000, minimum=1)
if TOKEN_TTL_SECONDS > TOKEN_MAX_TTL_SECONDS:
    raise ImproperlyConfigured("TOKEN_TTL_SECONDS must not exceed TOKEN_MAX_TTL_SECONDS.")

# Rate limits (DRF throttles on the shared cache).
THROTTLE_RATES = {
    "anon": env_rate("THROTTLE_ANON", "100/min"),
    "user": env_rate("THROTTLE_USER", "100/min"),
    "token_create": env_rate("THROTTLE_TOKEN_CREATE", "10/min"),
    "register": env_rate("THROTTLE_REGISTER", "30/min"),
    "usage": env_rate("THROTTLE_USAGE", "600/min"),
    "vote": env_rate("THROTTLE_VOTE", "30/min"),
}

# Client address: the number of proxies in front of the app whose X-Forwarded-For is trusted.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, maximum=10)
# Optional allow-list of CIDR ranges for /api/ and /admin/ (empty: off).
IP_ALLOWLIST = env_list("IP_ALLOWLIST")
for _cidr in IP_ALLOWLIST:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"IP_ALLOWLIST has an invalid CIDR range: {_cidr!r}.") from None

# The HMAC key of signed audit checkpoints (manage.py audit_checkpoint). It must never be
# stored in the database the checkpoints protect; unset, checkpoints are refused.
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "").strip()
if AUDIT_CHECKPOINT_KEY and len(AUDIT_CHECKPOINT_KEY) < 32:
    raise ImproperlyConfigured(
        "AUDIT_CHECKPOINT_KEY must be at least 32 characters of random secret "
        "(python -c 'import secrets; print(secrets.token_hex(32))')."
    )

# Background work (registry_site/celery.py). With CELERY_BROKER_URL (RabbitMQ amqp:// or Redis
# redis://) `make worker` runs the tasks and celery beat the schedule below. Unset (make run,
# the default test pass), tasks run in-process as they are called and there is no beat: the
# audit trail then seals after each audited commit instead.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip()
if CELERY_BROKER_URL and not CELERY_BROKER_URL.startswith(
        ("amqp://", "amqps://", "pyamqp://", "redis://", "rediss://")):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must start with amqp://, amqps://, pyamqp:// (RabbitMQ), redis:// or "
        f"rediss:// (Redis), got {CELERY_BROKER_URL.split('://')[0]!r}://…; leave it unset to "
        "run tasks in-process."
    )
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Tasks report through the database they change, not a result store.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves it queued; tasks are idempotent
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# The audit sealer: every committed event is sealed into the chain within this many seconds.
AUDIT_SEAL_INTERVAL_SECONDS = env_int("AUDIT_SEAL_INTERVAL_SECONDS", 1, minimum=1, maximum=3600)
AUDIT_SEAL_BATCH = 500
AUDIT_SEAL_ON_COMMIT = CELERY_TASK_ALWAYS_EAGER

# Usage counters: a record commits an insert-only delta row, folded into the counter row by
# beat (fold-usage-counters, every 5 s) and by the process that recorded it, at most once per
# this many milliseconds (a statement and a transaction less on almost every record). 0: after
# every record, which is the default without a broker, where nothing else folds.
USAGE_FOLD_AFTER_COMMIT_MS = env_int("USAGE_FOLD_AFTER_COMMIT_MS",
                                     0 if CELERY_TASK_ALWAYS_EAGER else 1000,
                                     minimum=0, maximum=60_000)

# What beat starts, and what `manage.py run_scheduled` runs once, now. Jobs are idempotent:
# running one again, or late, does no harm.
# run_scheduled runs them in this order: sealing last seals what the others audited.
CELERY_BEAT_SCHEDULE = {
    "charge-storage-fees": {
        "task": "models_app.tasks.storage_fees_charge",
        "schedule": crontab(hour=0, minute=5),  # the day just ended, in UTC
    },
    # Each usage folds its own counter row after commit; this picks up rows a fold skipped
    # (the row was busy) or a process that died after commit left behind.
    "fold-usage-counters": {
        "task": "models_app.tasks.usage_counters_fold",
        "schedule": 5.0,
        "options": {"expires": 50.0},
    },
    "purge-idempotency-keys": {
        "task": "registry_site.tasks.purge_idempotency_keys",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
    "seal-audit-log": {
        "task": "registry_site.tasks.seal_audit_log",
        "schedule": float(AUDIT_SEAL_INTERVAL_SECONDS),
        # A seal still queued after ten intervals is superseded by later ones: drop it.
        "options": {"expires": float(AUDIT_SEAL_INTERVAL_SECONDS) * 10},
    },
}

# Idempotency-Key (registry_site.idempotency): how long a key's first answer is replayed, and
# how long a request waits for another one holding its key before answering 409.
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 86_400, minimum=60,
                                      maximum=30 * 86_400)
IDEMPOTENCY_WAIT_SECONDS = env_int("IDEMPOTENCY_WAIT_SECONDS", 10, minimum=1, maximum=60)

# Request bodies: JSON and forms are small; artifact uploads stream and are bounded by the
# max_model_size parameter instead.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1_048_576, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry_site.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticatedOrReadOnly",
        "registry_site.permissions.TokenHasScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "registry_site.throttling.RequestRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    # JSON only (a form or multipart body answers 415), through one parser that refuses what
    # the stack cannot handle. Artifact uploads take the raw file (models_app.api).
    "DEFAULT_PARSER_CLASSES": ["registry_site.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "registry_site.pagination.PagePagination",
    "PAGE_SIZE": 25,
    "DEFAULT_RENDERER_CLASSES": ["registry_site.api.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "registry_site.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AI Registry API",
    "DESCRIPTION": "Register AI models, pay fees, govern the registry by weighted vote.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # 3.1: nullability is JSON Schema's own (a null $ref is oneOf it and null), which 3.0's
    # "nullable" beside allOf could not say exactly.
    "OAS_VERSION": "3.1.0",
    # Every operation's error answers, with the error body (registry_site.api.schema).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "registry_site.api.schema.document_errors"],
    # Swagger UI is served from this project (the sidecar package), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from the public validator: the page loads nothing from other hosts.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# Security headers. Production (DEBUG off) gets HTTPS-only cookies and HSTS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # /livez never reaches Django (registry_site.liveness); /healthz is probed over plain
    # HTTP by load balancers too.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Artifact refusals are in the audit trail; the scanner's per-file notes are noise.
        "picklescan": {"level": "ERROR"},
    },
}
