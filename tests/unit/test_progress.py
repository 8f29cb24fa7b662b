"""self.progress and self.status without servers: the throttle on a fake clock, what is
written when, the checks on values, and the job's JSON state left untouched."""

from __future__ import annotations

import gc
import json

import pytest

import tomqueue
from tomqueue.handler import decode_handler, encode_handler
from tomqueue.progress import RunStatus, StatusReport, attach, detach, run_status_of
from tomqueue.testing import perform_now
from tomqueue.worker.outcome import Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def recording(throttle: float = 1.0) -> tuple[RunStatus, list[StatusReport], Clock]:
    written: list[StatusReport] = []
    clock = Clock()
    return RunStatus(written.append, throttle=throttle, clock=clock), written, clock


def test_increments_write_at_most_once_per_interval_and_the_rest_at_the_end():
    run, written, clock = recording(throttle=1.0)
    for _ in range(1000):  # one increment a millisecond for a second
        run.progress.increment()
        clock.now += 0.001
    assert len(written) == 1  # the first at once, the others within its second
    assert written[0].value == 1
    clock.now += 0.5
    run.progress.increment()
    assert len(written) == 2 and written[-1].value == 1001
    run.progress.decrement(by=3)
    assert len(written) == 2 and run.dirty
    assert run.take_final() == StatusReport(998, None, None)
    assert not run.dirty


@pytest.mark.parametrize(
    ("throttle", "seconds", "most"),
    [(1.0, 10.0, 11), (0.25, 2.0, 9), (5.0, 3.0, 1)],
)
def test_the_number_of_throttled_writes_is_bounded_by_the_interval(throttle, seconds, most):
    run, written, clock = recording(throttle)
    steps = int(seconds * 1000)
    for _ in range(steps):
        run.progress.increment()
        clock.now += 0.001
    assert 1 <= len(written) <= most
    assert run.progress.value == steps


def test_assignments_and_update_write_at_once_whatever_the_throttle():
    run, written, clock = recording(throttle=3600)
    run.progress.total = 1000
    run.progress.value = 10
    run.status["step"] = "B"
    run.status.update(step="C", total=50, progress=0)
    run.progress.finish()
    assert [(r.value, r.total, r.fields) for r in written] == [
        (0, 1000, None),
        (10, 1000, None),
        (10, 1000, {"step": "B"}),
        (0, 50, {"step": "C"}),
        (50, 50, {"step": "C"}),
    ]
    run.progress.increment()  # the throttle counts from the last write, whichever it was
    assert len(written) == 5
    clock.now += 3600
    run.progress.increment()
    assert len(written) == 6 and written[-1].value == 52


def test_flush_writes_only_what_is_pending():
    run, written, _ = recording()
    assert run.flush() is False and run.report() is None
    run.progress.increment()
    run.progress.increment()
    assert len(written) == 1
    assert run.flush() is True and written[-1].value == 2
    assert run.flush() is False


def test_a_failed_write_is_kept_for_the_next_one_and_never_raises():
    calls: list[StatusReport] = []

    def flaky(report: StatusReport) -> None:
        calls.append(report)
        if len(calls) == 1:
            raise ConnectionError("database blip")

    run = RunStatus(flaky, throttle=1.0, clock=Clock())
    run.status["step"] = "A"  # fails, stays pending
    assert run.dirty and run.writes == 0
    assert run.flush() is True and calls[-1].fields == {"step": "A"}
    assert run.writes == 1


def test_after_take_final_late_reports_stay_in_memory():
    run, written, _ = recording()
    run.progress.value = 1
    run.take_final()
    run.progress.value = 2
    assert len(written) == 1 and run.progress.value == 2


def test_status_fields_are_a_dict_and_progress_keys_are_routed():
    run, _, _ = recording()
    run.status.update({"a": 1}, b=[1, "x", None], total=10, progress=3)
    assert dict(run.status) == {"a": 1, "b": [1, "x", None]}
    assert (run.progress.value, run.progress.total, run.progress.fraction) == (3, 10, 0.3)
    del run.status["a"]
    assert "a" not in run.status and len(run.status) == 1
    with pytest.raises(KeyError):
        del run.status["a"]
    run.status["total"] = None
    assert run.progress.total is None and run.progress.fraction is None


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("id", 1, ValueError),
        ("state", "x", ValueError),
        ("value", 1, ValueError),
        ("when", object(), TypeError),
        ("nan", float("nan"), TypeError),
        ("nul", "a\x00b", ValueError),
        ("surrogate", "\ud800", ValueError),
        ("nested", {"k": {1: "int key"}}, TypeError),
        ("total", 1.5, TypeError),
        ("progress", True, TypeError),
        ("progress", 2**63, ValueError),
    ],
)
def test_what_the_status_column_could_not_hold_is_refused_by_name(key, value, error):
    run, written, _ = recording()
    with pytest.raises(error):
        run.status[key] = value
    assert written == [] and run.report() is None


def test_progress_values_must_be_ints():
    run, _, _ = recording()
    with pytest.raises(TypeError):
        run.progress.value = 1.5  # type: ignore[assignment]
    with pytest.raises(TypeError):
        run.progress.increment(by="1")  # type: ignore[arg-type]


def test_the_report_serialises_to_json_for_the_jsonb_column():
    report = StatusReport(1, 2, {"step": "é", "n": [1.5, None]})
    assert json.loads(report.fields_json() or "") == {"step": "é", "n": [1.5, None]}
    assert StatusReport(1, None, None).fields_json() is None


class Import(tomqueue.Job):
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def perform(self) -> None:
        self.progress.total = self.rows
        for _ in range(self.rows):
            self.progress.increment()
        self.progress.decrement()
        self.status["step"] = "B"
        self.status.update(step="C", total=50, progress=0)


def test_perform_now_reports_in_memory_without_a_database():
    job = Import(5)
    assert perform_now(job) is Outcome.SUCCEEDED
    assert (job.progress.value, job.progress.total) == (0, 50)
    assert dict(job.status) == {"step": "C"}


def test_progress_and_status_are_never_job_state():
    job = Import(3)
    job.progress.total = 7
    job.status["step"] = "x"
    document = json.loads(encode_handler(job))
    assert document["state"] == {"rows": 3}
    again = decode_handler(encode_handler(job))
    assert again.progress.total is None  # a new object, a new run


def test_assigning_to_progress_or_status_explains_the_names():
    class Clash(tomqueue.Job):
        def __init__(self) -> None:
            self.status = "new"  # type: ignore[assignment,misc]

    with pytest.raises(AttributeError, match="give your own attribute another name"):
        Clash()


def test_the_workers_run_status_is_made_only_when_the_job_reports():
    made: list[RunStatus] = []

    def make() -> RunStatus:
        made.append(RunStatus())
        return made[-1]

    quiet, loud = Import(1), Import(1)
    attach(quiet, make)
    attach(loud, make)
    loud.progress.increment()
    assert detach(quiet) is None
    assert detach(loud) is made[0] and len(made) == 1


def test_an_in_memory_run_status_goes_with_its_job():
    job = Import(1)
    run = run_status_of(job)
    assert run_status_of(job) is run
    from tomqueue import progress

    key = id(job)
    del job
    gc.collect()
    assert key not in progress._runs or progress._runs[key] is not run


def test_a_job_class_status_ttl_is_checked_at_definition():
    with pytest.raises(ValueError, match="status_ttl"):

        class Bad(tomqueue.Job):
            status_ttl = 0

    class Good(tomqueue.Job):
        status_ttl = 5

    assert Good.status_ttl_seconds(86400.0) == 5.0
    assert Import.status_ttl_seconds(86400.0) == 86400.0
