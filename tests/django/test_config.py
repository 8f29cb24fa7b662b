"""The backend's parts that need no server: the import shim, settings from Django's,
the priority mapping, system checks, task validation and the worker's registry."""

from __future__ import annotations

import django
import pytest
from django.test import override_settings

from tests.django_project.testapp import tasks
from tomqueue.contrib.django import compat
from tomqueue.contrib.django.backend import TomQueueBackend, tomqueue_priority
from tomqueue.contrib.django.config import database_url_for, tomqueue_changes
from tomqueue.contrib.django.registry import TaskRegistry, UnknownTaskError
from tomqueue.priority import PriorityLevel, default_level


def test_the_shim_picks_the_tasks_framework_this_django_has():
    expected = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
    assert expected == compat.TASKS_MODULE
    assert compat.task_backends is compat.tasks.task_backends
    assert issubclass(TomQueueBackend, compat.BaseTaskBackend)
    assert compat.normalize_json({"a": (1, 2)}) == {"a": [1, 2]}


def test_the_database_url_comes_from_django_databases():
    from django.db import connections

    database = connections["default"].settings_dict
    url = database_url_for("default")
    assert url.startswith("postgresql+psycopg://")
    assert url.split("?")[0].endswith(f"@{database['HOST']}:{database['PORT']}/{database['NAME']}")
    assert "application_name=" in url  # libpq options ride along


def test_options_become_tomqueue_settings():
    changes = tomqueue_changes(
        {
            "AMQP_URL": "amqp://u:p@127.0.0.1:5673/%2F",
            "PREFIX": "shop",
            "SETTINGS": {"wait_for_broker": True},
        }
    )
    assert changes["amqp_url"] == "amqp://u:p@127.0.0.1:5673/%2F"
    assert changes["prefix"] == "shop" and changes["wait_for_broker"] is True
    assert changes["database_url"] == database_url_for("default")
    explicit = tomqueue_changes({"DATABASE_URL": "postgresql+psycopg://x@db/app"})
    assert explicit["database_url"] == "postgresql+psycopg://x@db/app"
    assert "amqp_url" not in explicit  # then TOMQUEUE_AMQP_URL, or tomqueue's default


@pytest.mark.parametrize(
    ("django_priority", "level"),
    [
        (100, PriorityLevel.HIGH),
        (1, PriorityLevel.HIGH),
        (0, PriorityLevel.NORMAL),
        (-1, PriorityLevel.LOW),
        (-9, PriorityLevel.LOW),
        (-10, PriorityLevel.BULK),
        (-100, PriorityLevel.BULK),
    ],
)
def test_higher_django_priorities_map_onto_sooner_tomqueue_levels(django_priority, level):
    assert default_level(tomqueue_priority(django_priority)) is level


def test_system_checks_name_bad_queues_options_and_databases():
    backend = TomQueueBackend(
        "bad",
        {"QUEUES": ["default", "has space"], "OPTIONS": {"PREFIXX": "x", "DATABASE": "nope"}},
    )
    ids = sorted(message.id for message in backend.check())
    assert ids == ["tomqueue.E001", "tomqueue.E002", "tomqueue.E003"]
    assert list(TomQueueBackend("good", {}).check()) == []


def test_a_queue_name_tomqueue_cannot_hold_is_refused_at_enqueue():
    with override_settings(
        TASKS={"default": {"BACKEND": "tomqueue.contrib.django.TomQueueBackend", "QUEUES": []}}
    ):
        tasks.add.using(queue_name="anything-goes")  # no QUEUES: any name
        with pytest.raises(compat.InvalidTask, match="not a tomqueue queue name"):
            tasks.add.using(queue_name="two words")


def test_the_registry_holds_the_autodiscovered_tasks_only():
    registry = TaskRegistry()
    scanned = registry.discover()
    assert "tests.django_project.testapp.tasks" in scanned
    assert registry.lookup("tests.django_project.testapp.tasks.add") is tasks.add
    assert registry.lookup("tests.django_project.testapp.hidden.hidden") is None
    with pytest.raises(UnknownTaskError, match="is not registered in this worker"):
        registry.require("os.system")
    # what this process enqueued is known to describe a result, never to run
    from tests.django_project.testapp import hidden

    registry.remember(hidden.hidden)
    assert registry.describe("tests.django_project.testapp.hidden.hidden") is hidden.hidden
    assert registry.lookup("tests.django_project.testapp.hidden.hidden") is None
