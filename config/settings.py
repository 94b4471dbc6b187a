"""Settings, all read from the environment (django-environ).

Every knob has a default that serves `make run`; production secrets have none
when DJANGO_DEBUG is off. See the settings table in README.md.
"""

from pathlib import Path
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config.dbpool import check_connection
from config.logs import logging_config

# Lets generic admin/queryset classes be subscripted at run time, as the type stubs declare them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A development key only when DEBUG is on; production must set one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key" if DEBUG else environ.Env.NOTSET)
if not SECRET_KEY.strip():  # e.g. deploy/chat.env.example copied without filling it in
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is empty; set it to a long random string (see README, Deployment).")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# WebSocket Origins (scheme://host[:port]); empty: ALLOWED_HOSTS on the port the client reached (chat/origin.py).
CHAT_ALLOWED_ORIGINS = env.list("CHAT_ALLOWED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    # Before admin: chat's registration/* templates (sign-in, password reset) replace admin's.
    "chat",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # ArrayField and GinIndex (notifications.OutboxEmail.quoted_user_ids)
    "channels",
    "events",
    "notifications",
    "blog",
]

MIDDLEWARE = [
    # First: /healthz, /readyz and /metrics are answered before any other middleware (config.ops).
    "config.ops.OpsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# PostgreSQL through psycopg 3 with Django's connection pool: under ASGI every
# database call borrows a pooled connection instead of opening a new one.
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://chat:chat@127.0.0.1:54329/chat")}
if env.bool("DATABASE_POOL", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=16),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        # Test each connection as it is borrowed, so one lost in a database
        # restart is replaced instead of failing the next request.
        "check": check_connection,
    }
# The event store prepares its append statement once per connection (Django's
# own queries are never prepared); false for a pooler that cannot keep them.
EVENTS_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:63799/0")
# The rate limit's and presence's connections per server process; a caller waits
# up to REDIS_POOL_TIMEOUT seconds for a free one rather than failing.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=32)
REDIS_POOL_TIMEOUT = env.float("REDIS_POOL_TIMEOUT", default=10.0)

# The channel layer. "pubsub" does one PUBLISH per broadcast whatever the room
# size; its occasional losses are repaired by the consumer's seq-based gap fill.
_LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYERS = {
    "default": {
        # "pubsub", "core", or the dotted path of a layer class.
        "BACKEND": (lambda name: _LAYERS.get(name, name))(env.str("CHAT_CHANNEL_LAYER", default="pubsub")),
        # redis-py's default 5 s socket timeout equals the core layer's 5 s BZPOPMIN, so an
        # idle socket's receive timed out before Redis answered and the socket closed with
        # 1011: reads wait longer than any blocking command of the layer.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 10}],
            # Pub/sub channels are not per Redis database: name them by it, so servers on
            # another database of the same Redis (tests: 1, bench: 2) never hear these.
            "prefix": f"asgi{urlsplit(REDIS_URL).path.strip('/') or '0'}",
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `collectstatic` writes here and whitenoise serves from here (DEBUG off); tests collect into a temp dir.
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Django's database sessions with the user's id in a column of its own (chat.sessions).
SESSION_ENGINE = "chat.sessions"
SESSION_COOKIE_SAMESITE = "Lax"
# A sign-in lasts this long (Django's default, two weeks); open sockets close at their session's expiry.
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=1209600)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy (deploy/nginx): trust its X-Forwarded-Proto, so
# request.is_secure() is true and the SSL redirect below does not loop. Only set
# this when the proxy overwrites the header; a client could send it otherwise.
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
# e.g. security.W021 for a site that will not submit its domain to the HSTS preload list.
SILENCED_SYSTEM_CHECKS = env.list("DJANGO_SILENCED_SYSTEM_CHECKS", default=[])
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: everything from our own origin only; no inline script or style
# (page data travels in json_script blocks, which are not executed). 'self' covers ws(s):// too.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# EMAIL_URL (smtp://user:pass@host:port, consolemail://, ...) becomes Django 6's MAILERS.
_email = env.email_url("EMAIL_URL", default="consolemail://")
_smtp_options = {
    "host": _email.get("EMAIL_HOST"),
    "port": _email.get("EMAIL_PORT"),
    "username": _email.get("EMAIL_HOST_USER") or None,
    "password": _email.get("EMAIL_HOST_PASSWORD") or None,
    "use_tls": _email.get("EMAIL_USE_TLS", False),
    "use_ssl": _email.get("EMAIL_USE_SSL", False),
    "timeout": 30,
}
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": _smtp_options if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="chat@localhost")

# Celery: Redis is both broker and result store.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
# Above the longest task, so Redis never redelivers a task that is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The queue workers consume and tasks go to (tests give each session its own).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TIMEZONE = TIME_ZONE

# Email: projections of the event log write an outbox; Celery sends it (README, "How email works").
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")  # absolute links in emails
# How often beat runs the projections, the mention flush and the outbox sender.
NOTIFY_POLL_SECONDS = env.float("NOTIFY_POLL_SECONDS", default=5.0)
# A mention is emailed only if not read within this many seconds; mentions in that window share one email.
NOTIFY_MENTION_DELAY = env.float("NOTIFY_MENTION_DELAY", default=120.0)
# Mentions older than this when projected (a rebuild replaying old history) are never emailed.
NOTIFY_MENTION_MAX_AGE = env.float("NOTIFY_MENTION_MAX_AGE", default=24 * 3600.0)
DIGEST_HOUR = env.int("DIGEST_HOUR", default=7)  # local hour (TIME_ZONE) when yesterday's digest goes out
DIGEST_BATCH_SIZE = env.int("DIGEST_BATCH_SIZE", default=500)  # users rendered and queued per transaction
BLOG_EMAIL_BATCH_SIZE = env.int("BLOG_EMAIL_BATCH_SIZE", default=500)  # blog announcements queued per insert
PROJECTION_BATCH_SIZE = env.int("PROJECTION_BATCH_SIZE", default=500)  # events per projection transaction
# Projection name → class; events.projections runs them from their checkpoints.
PROJECTIONS = {
    "mentions": "chat.mentions.MentionsProjection",
    "blog.announcements": "blog.announcements.AnnouncementsProjection",
}
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=200)  # emails per sender run
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)  # temporary failures before giving up
OUTBOX_RETRY_SECONDS = env.float("OUTBOX_RETRY_SECONDS", default=30.0)  # first retry delay, doubled each time
OUTBOX_RETRY_MAX_SECONDS = env.float("OUTBOX_RETRY_MAX_SECONDS", default=3600.0)

# Polling tasks expire rather than pile up behind a busy worker: the next tick does the same work.
_POLL_OPTIONS = {"expires": max(NOTIFY_POLL_SECONDS * 2, 1.0)}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    **{
        f"projection:{name}": {
            "task": "events.projection_run",
            "schedule": NOTIFY_POLL_SECONDS,
            "args": [name],
            "options": _POLL_OPTIONS,
        }
        for name in PROJECTIONS
    },
    "mentions-flush": {"task": "chat.mentions_flush", "schedule": NOTIFY_POLL_SECONDS, "options": _POLL_OPTIONS},
    "outbox-send": {"task": "notifications.outbox_send", "schedule": NOTIFY_POLL_SECONDS, "options": _POLL_OPTIONS},
    "digest": {"task": "chat.digest_send", "schedule": crontab(minute=0, hour=DIGEST_HOUR)},
}

# The chat protocol's knobs (PROTOCOL.md).
CHAT_HISTORY_LIMIT = env.int("CHAT_HISTORY_LIMIT", default=50)
CHAT_HISTORY_MAX = env.int("CHAT_HISTORY_MAX", default=500)
CHAT_RESUME_MAX = env.int("CHAT_RESUME_MAX", default=1000)
CHAT_MESSAGE_MAX_CHARS = env.int("CHAT_MESSAGE_MAX_CHARS", default=4000)
CHAT_FRAME_MAX_BYTES = env.int("CHAT_FRAME_MAX_BYTES", default=64 * 1024)
# Search (chat.search): results per page by default and at most, and how long one
# search may run before it is refused as too broad.
CHAT_SEARCH_LIMIT = env.int("CHAT_SEARCH_LIMIT", default=20)
CHAT_SEARCH_MAX = env.int("CHAT_SEARCH_MAX", default=100)
CHAT_SEARCH_TIMEOUT_MS = env.int("CHAT_SEARCH_TIMEOUT_MS", default=5000)
CHAT_RATE_LIMIT = env.str("CHAT_RATE_LIMIT", default="20/10s")
# How often each server process compares its rooms' heads with what its
# sockets were sent, to deliver an event whose broadcast was lost.
CHAT_HEAD_CHECK_SECONDS = env.float("CHAT_HEAD_CHECK_SECONDS", default=0.4)
# Presence (who is in a room now): each socket refreshes its entry every REFRESH
# seconds; an entry not refreshed for TTL seconds (its process died) is ignored.
CHAT_PRESENCE_TTL_SECONDS = env.float("CHAT_PRESENCE_TTL_SECONDS", default=45.0)
CHAT_PRESENCE_REFRESH_SECONDS = env.float("CHAT_PRESENCE_REFRESH_SECONDS", default=15.0)
# Presence changes within this window (per process and room) go out as one frame; 0 sends each at once.
CHAT_PRESENCE_COALESCE_SECONDS = env.float("CHAT_PRESENCE_COALESCE_SECONDS", default=0.2)
# A presence frame lists at most this many users (sorted), with the total `count`.
CHAT_PRESENCE_LIST_MAX = env.int("CHAT_PRESENCE_LIST_MAX", default=100)

# Connections. Threads that run the sockets' database work (each borrows a pooled
# connection per call: keep DATABASE_POOL_MAX at least this).
CHAT_DB_THREADS = env.int("CHAT_DB_THREADS", default=8)
# Seconds a room stays subscribed in a process after its last socket left (reconnects find it live).
CHAT_ROOM_LINGER_SECONDS = env.float("CHAT_ROOM_LINGER_SECONDS", default=30.0)
# Open sockets per server process; past it a new socket is refused with 4503.
CHAT_MAX_SOCKETS = env.int("CHAT_MAX_SOCKETS", default=20000)
# Handshakes waiting for their database batch; past it a new socket is refused with 4503.
CHAT_JOIN_BACKLOG = env.int("CHAT_JOIN_BACKLOG", default=5000)
# The retry hint of a 4503 refusal (seconds; the client adds jitter).
CHAT_RETRY_AFTER_SECONDS = env.int("CHAT_RETRY_AFTER_SECONDS", default=5)
# Bytes a socket may have queued for a client that does not read before it is closed with 4008.
CHAT_SEND_QUEUE_BYTES = env.int("CHAT_SEND_QUEUE_BYTES", default=1024 * 1024)

# Operations (README, "Operating it"). LOG_FORMAT: plain (one line per record) or json (one object per line).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
LOGGING_CONFIG = "config.logs.configure"
# PostgreSQL and Redis must answer /readyz within this many seconds.
HEALTH_TIMEOUT_SECONDS = env.float("HEALTH_TIMEOUT_SECONDS", default=2.0)
# Bearer token of /metrics (and the worker's exporter); empty: metrics are not served.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Where every process of the host writes its metrics (prometheus-client's multiprocess
# mode, which reads this variable itself); empty: each process reports only itself.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# A Celery worker serves /metrics on this port from its main process (0: off).
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)
METRICS_WORKER_HOST = env.str("METRICS_WORKER_HOST", default="127.0.0.1")
