"""The Django project of tests/django: one app (testapp) whose tasks run on tomqueue.

The database, broker and prefix come from the environment (TOMQUEUE_DATABASE_URL,
TOMQUEUE_AMQP_URL, TOMQUEUE_PREFIX), so a test hands a subprocess its own cloned database
and queue prefix; the in-process tests point the connection at theirs per test."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import django

_url = urlsplit(
    os.environ.get(
        "TOMQUEUE_DATABASE_URL",
        os.environ.get(
            "TOMQUEUE_TEST_DATABASE_URL",
            "postgresql+psycopg://tomqueue:tomqueue@127.0.0.1:5432/tomqueue",
        ),
    )
)

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "tomqueue.contrib.django",
    "tests.django_project.testapp",
]
if django.VERSION < (6, 0):
    INSTALLED_APPS.insert(0, "django_tasks")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        # kept between tasks, so that a server that hangs up on it is seen by the worker
        "CONN_MAX_AGE": int(os.environ.get("TESTAPP_CONN_MAX_AGE", "600")),
        "OPTIONS": {"application_name": os.environ.get("TESTAPP_APPLICATION_NAME", "testapp")},
    }
}

_options: dict[str, object] = {}
if os.environ.get("TOMQUEUE_AMQP_URL"):
    _options["AMQP_URL"] = os.environ["TOMQUEUE_AMQP_URL"]
if os.environ.get("TOMQUEUE_PREFIX"):
    _options["PREFIX"] = os.environ["TOMQUEUE_PREFIX"]

TASKS = {
    "default": {
        "BACKEND": "tomqueue.contrib.django.TomQueueBackend",
        "QUEUES": ["default", "billing", "reports"],
        "OPTIONS": _options,
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
