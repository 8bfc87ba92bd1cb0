"""Settings, all read from the environment (see .env.example). Bad values stop the start-up.

With nothing set, dagmerge runs embedded: SQLite, a filesystem Celery broker and an in-process channel
layer fed from the event table, all under DAGMERGE_HOME. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis for several workers on several hosts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dagmerge_site.env import env_bool, env_choice, env_int, env_list, env_proxy_header, env_str

SITE_DIR = Path(__file__).resolve().parent


def _site_folder(name: str) -> Path:
    """templates/ or static/: inside this package when installed from a wheel (pyproject maps them there),
    else the top-level folder of the checkout."""
    installed = SITE_DIR / name
    return installed if installed.is_dir() else SITE_DIR.parent / name


# Relative to the directory dagmerge starts in, as the README documents; every process of one installation
# (web, workers, CLI) starts in the same one or sets it.
DAGMERGE_HOME = Path(env_str("DAGMERGE_HOME", "var")).resolve()
DAGMERGE_WORKSPACE = Path(env_str("DAGMERGE_WORKSPACE", str(DAGMERGE_HOME / "workspace"))).resolve()
# Task code runs only under bubblewrap unless the operator says it is trusted (no confinement at all).
DAGMERGE_TRUSTED_CODE = env_bool("DAGMERGE_TRUSTED_CODE", False)
# Generated secrets (the secret key) live here, apart from the workspace, whose worktrees tasks write in.
DAGMERGE_SECRETS_DIR = Path(env_str("DAGMERGE_SECRETS_DIR", str(DAGMERGE_HOME / "secrets"))).resolve()
if DAGMERGE_WORKSPACE.is_relative_to(DAGMERGE_SECRETS_DIR) or DAGMERGE_SECRETS_DIR.is_relative_to(DAGMERGE_WORKSPACE):
    raise ImproperlyConfigured(f"DAGMERGE_SECRETS_DIR ({DAGMERGE_SECRETS_DIR}) and DAGMERGE_WORKSPACE "
                               f"({DAGMERGE_WORKSPACE}) must not contain each other: tasks work in the workspace")
DAGMERGE_HOME.mkdir(parents=True, exist_ok=True)


def _generated_secret(name: str) -> str:
    """A random secret made once per installation, in DAGMERGE_SECRETS_DIR (0700, the file 0600).

    Several processes may start at once on a fresh home: each writes its candidate to a file of its own and
    links it into place; the link fails for all but the first, and everyone reads the winner.
    """
    folder = DAGMERGE_SECRETS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / name
    legacy = DAGMERGE_HOME / name  # where it used to be: moved, so sessions and task tokens stay valid
    if legacy.is_file() and not path.exists():
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            os.replace(legacy, path)
            path.chmod(0o600)
    if not path.exists():
        fd, candidate = tempfile.mkstemp(dir=folder)  # 0600
        with os.fdopen(fd, "w") as stream:
            stream.write(secrets.token_urlsafe(50))
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(candidate)
    return path.read_text().strip()


def _secret_key() -> str:
    return env_str("DAGMERGE_SECRET_KEY") or _generated_secret("secret_key")


SECRET_KEY = _secret_key()
DEBUG = env_bool("DAGMERGE_DEBUG", False)
ALLOWED_HOSTS = env_list("DAGMERGE_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DAGMERGE_CSRF_TRUSTED_ORIGINS", "")
# HTTPS, usually behind a proxy that ends TLS (the README's production environment sets all of these; the
# embedded default serves plain HTTP on localhost, so they are off unless set).
SECURE_SSL_REDIRECT = env_bool("DAGMERGE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = env_proxy_header("DAGMERGE_PROXY_SSL_HEADER")
SECURE_HSTS_SECONDS = env_int("DAGMERGE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DAGMERGE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DAGMERGE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DAGMERGE_SECURE_COOKIES", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "django_celery_results",
    "coordination",
    "merges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dagmerge_site.urls"
ASGI_APPLICATION = "dagmerge_site.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [_site_folder("templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]


def _databases() -> dict:
    url = env_str("DATABASE_URL") or f"sqlite:///{DAGMERGE_HOME / 'dagmerge.sqlite3'}"
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL dagmerge can use: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several processes (web, workers) share the file: WAL, and writers that wait instead of failing.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["TEST"] = {"NAME": str(DAGMERGE_HOME / "test.sqlite3")}
    elif config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL selects {config['ENGINE']}; use postgres:// or sqlite:///")
    elif env_bool("DAGMERGE_PREPARED_STATEMENTS", True):
        # Parameters bound by the server, and a statement a connection runs for the fifth time prepared
        # (psycopg's default threshold; Django turns preparing off unless told): the hot ones (a claim, a
        # landing) are then not planned again. Planning was about a third of PostgreSQL's time per task of
        # a chain (22 -> 15-17 ms of CPU, bench/scale.py's chain).
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "server_side_binding": True, "prepare_threshold": 5}
    return {"default": config}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis when configured, else a broker made of folders (no server to install).
BROKER_DIR = DAGMERGE_HOME / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, int | str] = {
        "visibility_timeout": env_int("DAGMERGE_VISIBILITY_TIMEOUT", 3600, 60),
    }
else:
    for folder in ("queue", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    # "localhost" names no server (the transport only reads folders); without a host kombu warns on
    # every connection, and every CLI command would print it.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
# A worker process keeps its database connection across jobs (coordination.jobs.dispatchers), renewed every
# this many jobs; Celery's default closes it after every job.
CELERY_DB_REUSE_MAX = 500
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "git"
CELERY_TASK_QUEUES: dict[str, dict[str, str]] = {"agents": {}, "git": {}}  # coordination.domain.dispatch.Queue
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "coordination.sweep", "schedule": env_int("DAGMERGE_SWEEP_SECONDS", 30, 1)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DAGMERGE_HOME / "celerybeat-schedule")

# How dagmerge hands work to workers: "celery" (the servers) or "threads" (`dagmerge run`).
DAGMERGE_DISPATCH = env_choice("DAGMERGE_DISPATCH", "celery", ("celery", "threads"))
DAGMERGE_TASK_TIMEOUT = env_int("DAGMERGE_TASK_TIMEOUT", 3600, 1)
DAGMERGE_LEASE_SECONDS = env_int("DAGMERGE_LEASE_SECONDS", 60, 5)
# Task checkouts kept per repository on each worker host and reused from task to task (0: a new one per task).
DAGMERGE_SANDBOX_POOL = env_int("DAGMERGE_SANDBOX_POOL", 4, 0)
# The sweep sends a job again for work queued longer than this (its message may have died with a worker).
DAGMERGE_RESEND_SECONDS = env_int("DAGMERGE_RESEND_SECONDS", 120, 1)
# The agent tier and the Claude executor (ANTHROPIC_API_KEY itself is read where it is used, never stored).
DAGMERGE_LLM_MODEL = env_str("DAGMERGE_LLM_MODEL") or None
DAGMERGE_LLM_MAX_TURNS = env_int("DAGMERGE_LLM_MAX_TURNS", 30, 1)
DAGMERGE_LLM_TIMEOUT = env_int("DAGMERGE_LLM_TIMEOUT", 600, 1)
DAGMERGE_LLM_MAX_RETRIES = env_int("DAGMERGE_LLM_MAX_RETRIES", 2, 0)
DAGMERGE_CLAUDE_CLI = env_str("DAGMERGE_CLAUDE_CLI") or None
DAGMERGE_CLAUDE_ALLOW_BASH = env_bool("DAGMERGE_CLAUDE_ALLOW_BASH", False)
DAGMERGE_MERGE_TIMEOUT = env_int("DAGMERGE_MERGE_TIMEOUT", 600, 1)
DAGMERGE_API_URL = env_str("DAGMERGE_API_URL", "http://127.0.0.1:8000").rstrip("/")  # as tasks reach it
DAGMERGE_RELAY_INTERVAL_MS = env_int("DAGMERGE_RELAY_INTERVAL_MS", 50, 10)
# /metrics (Prometheus): off unless asked for; readable by a signed-in viewer or with this bearer token.
DAGMERGE_METRICS = env_bool("DAGMERGE_METRICS", False)
DAGMERGE_METRICS_TOKEN = env_str("DAGMERGE_METRICS_TOKEN")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [_site_folder("static")]
STATIC_ROOT = DAGMERGE_HOME / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_choice("DAGMERGE_LOG_LEVEL", "INFO",
                                                            ("DEBUG", "INFO", "WARNING", "ERROR"))},
}
