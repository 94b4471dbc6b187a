"""Settings, all read from the environment (django-environ).

Every knob has a default that serves `make run`; production secrets have none
when DJANGO_DEBUG is off. See the settings table in README.md.
"""

from pathlib import Path

import django_stubs_ext
import environ
from celery.schedules import crontab
from django.utils.csp import CSP

from config.dbpool import check_connection

# Lets generic admin/queryset classes be subscripted at run time, as the type stubs declare them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A development key only when DEBUG is on; production must set one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key" if DEBUG else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

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
    "channels",
    "events",
    "blog",
]

MIDDLEWARE = [
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
        "CONFIG": {"hosts": [REDIS_URL]},
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

SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
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
    "outbox-send": {"task": "events.outbox_send", "schedule": NOTIFY_POLL_SECONDS, "options": _POLL_OPTIONS},
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
