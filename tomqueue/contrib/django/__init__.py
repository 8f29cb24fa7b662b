"""tomqueue as a backend for Django's Tasks framework.

Settings::

    INSTALLED_APPS = [..., "django_tasks" (Django 5.2 only), "tomqueue.contrib.django"]
    TASKS = {"default": {"BACKEND": "tomqueue.contrib.django.TomQueueBackend"}}

then ``python manage.py tomqueue_worker`` and ``python manage.py tomqueue_deferred``.
See docs/django.md. Importing this package loads Django's Tasks framework only when
``TomQueueBackend`` is first asked for (Django imports it as an app before that).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TomQueueBackend"]


def __getattr__(name: str) -> Any:
    if name == "TomQueueBackend":
        from tomqueue.contrib.django.backend import TomQueueBackend

        return TomQueueBackend
    raise AttributeError(f"module 'tomqueue.contrib.django' has no attribute {name!r}")
