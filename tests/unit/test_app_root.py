"""The composition root without servers: building an App connects to nothing, stack
edits go through the App, and the default-app slot follows configure()."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tomqueue import default_app as slot
from tomqueue.app import App
from tomqueue.enqueue.layers import PublishAfterCommit
from tomqueue.settings import Settings

PURE_MODULES = [
    "tomqueue",
    "tomqueue.admission",
    "tomqueue.default_app",
    "tomqueue.enqueue",
    "tomqueue.error_text",
    "tomqueue.filters",
    "tomqueue.errors",
    "tomqueue.handler",
    "tomqueue.job",
    "tomqueue.job_status",
    "tomqueue.middleware",
    "tomqueue.ports",
    "tomqueue.priority",
    "tomqueue.progress",
    "tomqueue.settings",
    "tomqueue.snapshot",
    "tomqueue.verdicts",
    "tomqueue.wire",
    "tomqueue.worker.group_call",
    "tomqueue.worker.handoff",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importing_a_pure_module_loads_no_driver(module):
    code = (
        f"import sys, {module}\n"
        "loaded = [m for m in ('sqlalchemy', 'psycopg', 'pika') if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"


def test_the_package_face_still_offers_the_public_names():
    import tomqueue

    assert callable(tomqueue.enqueue) and callable(tomqueue.enqueue_many)
    assert tomqueue.App is App
    from tomqueue.middleware import Chain

    assert tomqueue.Chain is Chain
    from tomqueue.job_status import JobStatus, status

    assert tomqueue.status is status and tomqueue.JobStatus is JobStatus
    with pytest.raises(AttributeError):
        _ = tomqueue.no_such_name  # type: ignore[attr-defined]


def test_building_an_app_connects_to_nothing():
    app = App(Settings(database_url="postgresql+psycopg://u@127.0.0.1:1/none"))
    assert "engine" not in app.__dict__ and "publisher" not in app.__dict__
    app.close()  # closing what was never opened is fine


def test_enqueue_stack_edits_apply_to_that_app_only():
    one, two = App(Settings()), App(Settings())

    class Marker:
        def __call__(self, ctx, call_next):
            return call_next(ctx)

    one.edit_enqueue_stack(lambda stack: stack.insert_before(PublishAfterCommit, Marker()))
    assert one.enqueue_stack.names() == [
        "Validate",
        "TraceEnqueue",
        "Persist",
        "Marker",
        "PublishAfterCommit",
    ]
    assert two.enqueue_stack.names() == [
        "Validate",
        "TraceEnqueue",
        "Persist",
        "PublishAfterCommit",
    ]


def test_default_app_is_rebuilt_when_settings_change():
    slot.reset_configuration()
    try:
        first = slot.default_app()
        assert slot.default_app() is first
        slot.configure(prefix="other")
        second = slot.default_app()
        assert second is not first and second.settings.prefix == "other"
    finally:
        slot.reset_configuration()


def test_an_installed_app_is_the_default_and_is_not_closed_by_configure():
    closed: list[App] = []

    class Tracked(App):
        def close(self) -> None:
            closed.append(self)

    slot.reset_configuration()
    try:
        mine = Tracked(Settings(prefix="mine"))
        slot.install_default_app(mine)
        assert slot.default_app() is mine
        assert slot.current_settings().prefix == "mine"
        slot.configure(prefix="later")
        assert closed == []  # the process that installed it owns it
        assert slot.default_app() is not mine
    finally:
        slot.reset_configuration()
