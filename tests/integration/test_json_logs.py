"""TOMQUEUE_LOG_FORMAT=json: every stderr line of the real processes is one JSON object,
job lines carry the job's id, class, attempt, worker and duration, and no password shows."""

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.obs_app import FailsTwice, Succeeds

pytestmark = pytest.mark.integration


def spawn_logged(tq, module, *args):
    env = {**tq.environ, "TOMQUEUE_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    tq.processes.append(proc)
    return proc


def stopped_lines(proc):
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return err.decode().splitlines()


def test_worker_and_deferred_write_one_json_object_per_line_with_job_fields(tq):
    worker = spawn_logged(tq, "tomqueue.worker", "--app", "tests.obs_app")
    deferred = spawn_logged(tq, "tomqueue.deferred")
    ok = tomqueue.enqueue(Succeeds("json ok"))
    bad = tomqueue.enqueue(FailsTwice("json bad"))
    later = tomqueue.enqueue(
        Succeeds("json later"), run_at=datetime.now(UTC) + timedelta(seconds=1)
    )
    wait_until(lambda: tq.job(ok) is None and tq.job(later) is None, timeout=30)
    wait_until(lambda: (tq.job(bad) or {}).get("failed_at") is not None, timeout=30)

    worker_lines, deferred_lines = stopped_lines(worker), stopped_lines(deferred)
    assert worker_lines and deferred_lines
    documents = []
    for line in worker_lines + deferred_lines:
        document = json.loads(line)  # every line, not only the job lines
        assert {"time", "level", "logger", "message", "pid"} <= set(document)
        documents.append(document)

    by_job = {}
    for document in documents:
        if "outcome" in document:
            by_job.setdefault(document["job_id"], []).append(document)
    [succeeded] = by_job[ok]
    assert succeeded["job_class"] == Succeeds.class_name()
    assert succeeded["outcome"] == "succeeded" and succeeded["attempt"] == 1
    assert f"pid:{worker.pid} " in succeeded["worker"]
    assert isinstance(succeeded["duration"], float) and 0 <= succeeded["duration"] < 30
    assert succeeded["level"] == "INFO" and succeeded["queue"] == "default"
    assert [(d["outcome"], d["attempt"]) for d in by_job[bad]] == [("retried", 1), ("failed", 2)]
    assert all(d["job_class"] == FailsTwice.class_name() for d in by_job[bad])
    # the failure's own ERROR line carries the job's fields too (WorkContext.log_extra)
    [error_line] = [d for d in documents if d["level"] == "ERROR" and d.get("job_id") == bad]
    assert error_line["attempt"] == 2 and "failed for good" in error_line["message"]

    everything = "\n".join(worker_lines + deferred_lines)
    assert ":tomqueue@" not in everything  # the test database's password
    assert "guest:guest" not in everything  # the broker's
    assert any("***" in d["message"] for d in documents)  # the URLs were logged, masked


def test_an_unknown_log_format_is_refused_in_one_line(tq):
    result = subprocess.run(
        [sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs"],
        cwd=ROOT,
        env={**tq.environ, "TOMQUEUE_LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: TOMQUEUE_LOG_FORMAT must be one of text, json, got 'xml'"
    )
