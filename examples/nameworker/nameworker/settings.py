"""Settings of the NameWorker demo.

The database, broker and queue prefix come from the environment (``TOMQUEUE_DATABASE_URL``,
``TOMQUEUE_AMQP_URL``, ``TOMQUEUE_PREFIX``), as ``bin/dev`` sets them, so the web server,
the worker and the deferred manager all agree on them: Django's own connection and
tomqueue's are to the same PostgreSQL database.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import django

BASE_DIR = Path(__file__).resolve().parent.parent

_url = urlsplit(
    os.environ.get(
        "TOMQUEUE_DATABASE_URL",
        "postgresql+psycopg://tomqueue:tomqueue@127.0.0.1:5432/tomqueue_nameworker",
    )
)

# a demo served on 127.0.0.1 only: DEBUG lets runserver serve the page's script
SECRET_KEY = os.environ.get("NAMEWORKER_SECRET_KEY", "nameworker-demo-only")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "tomqueue.contrib.django",  # manage.py tomqueue_worker, tomqueue_deferred, tomqueue
    "names",
]
if django.VERSION < (6, 0):
    INSTALLED_APPS.insert(0, "django_tasks")  # the Tasks framework's backport

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "nameworker.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]
STATIC_URL = "static/"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_options: dict[str, object] = {}
if os.environ.get("TOMQUEUE_AMQP_URL"):
    _options["AMQP_URL"] = os.environ["TOMQUEUE_AMQP_URL"]
if os.environ.get("TOMQUEUE_PREFIX"):
    _options["PREFIX"] = os.environ["TOMQUEUE_PREFIX"]
TASKS = {
    "default": {
        "BACKEND": "tomqueue.contrib.django.TomQueueBackend",
        "OPTIONS": _options,
    }
}
