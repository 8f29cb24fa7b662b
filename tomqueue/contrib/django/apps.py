"""The Django app: ``"tomqueue.contrib.django"`` in INSTALLED_APPS brings the
``tomqueue_worker`` and ``tomqueue_deferred`` management commands."""

from __future__ import annotations

from django.apps import AppConfig


class TomQueueConfig(AppConfig):
    name = "tomqueue.contrib.django"
    label = "tomqueue"
    verbose_name = "tomqueue"
