"""The Django tests: the test project (tests/django_project) on the real servers.

Django is set up once per session with tests.django_project.settings; each test points
Django's default connection at its own cloned database (the ``tq`` fixture's) and the
backend at its own queue prefix, and starts ``manage.py`` commands as real subprocesses
with the same database and prefix in their environment."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("django", reason="the Django extra is not installed (pip install -e .[django])")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")

import django

django.setup()

from tests.conftest import ROOT, TestEnv, stop_process, wait_until  # noqa: E402

MANAGE = ROOT / "tests" / "django_project" / "manage.py"


@dataclass
class DjangoEnv:
    """One test's Django side: its TestEnv, and manage.py subprocesses on its settings."""

    tq: TestEnv
    application_name: str

    def environ(self, **extra: str) -> dict[str, str]:
        env = self.tq.environ
        env["TESTAPP_APPLICATION_NAME"] = self.application_name
        env.update(extra)
        return env

    def manage(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(MANAGE), *args], cwd="/", env=self.environ(**env)
        )
        self.tq.processes.append(proc)
        return proc

    def worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self.manage("tomqueue_worker", *args, **env)

    def result(self, task: Any, result_id: str) -> Any:
        return task.get_result(result_id)

    def wait_finished(self, task: Any, result_id: str, timeout: float = 30.0) -> Any:
        def finished() -> Any:
            result = task.get_result(result_id)
            return result if result.is_finished else None

        return wait_until(finished, timeout=timeout, message=f"task {result_id} to finish")


@pytest.fixture
def dj(tq: TestEnv) -> Iterator[DjangoEnv]:
    from django.db import connections
    from django.test import override_settings

    connections.close_all()
    database = connections["default"].settings_dict
    before = database["NAME"]
    database["NAME"] = tq.database_url.rsplit("/", 1)[1]
    tasks_setting = {
        "default": {
            "BACKEND": "tomqueue.contrib.django.TomQueueBackend",
            "QUEUES": ["default", "billing", "reports"],
            "OPTIONS": {"AMQP_URL": tq.amqp_url, "PREFIX": tq.prefix},
        }
    }
    try:
        with override_settings(TASKS=tasks_setting):
            yield DjangoEnv(tq, application_name=f"testapp-{uuid.uuid4().hex[:8]}")
    finally:
        connections.close_all()
        database["NAME"] = before


__all__ = ["DjangoEnv", "stop_process", "wait_until"]
