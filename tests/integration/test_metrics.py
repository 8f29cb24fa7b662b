"""--metrics-port on the real processes: scraped with httpx, parsed with prometheus_client's
parser, exact counts of every outcome, with one worker process and with a supervisor of
two (multiprocess mode), and the deferred manager's release lateness."""

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

import tomqueue
from tests.conftest import ROOT, stop_process, wait_until
from tests.jobs import KillsItsWorker
from tests.obs_app import FailsOnce, FailsTwice, Overruns, Succeeds

pytestmark = pytest.mark.integration


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port):
    """{(sample name, frozenset of labels): value}; None while the endpoint is not up."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.TransportError:
        return None
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def value(values, name, **labels):
    return values.get((name, frozenset(labels.items())), 0.0)


def completed(values, job_class, outcome, queue="default"):
    return value(
        values,
        "tomqueue_jobs_completed_total",
        **{"class": job_class.class_name(), "queue": queue, "outcome": outcome},
    )


def durations(values, job_class):
    return value(values, "tomqueue_job_duration_seconds_count", **{"class": job_class.class_name()})


def spawn_worker(tq, port, *args, **env):
    environ = {**tq.environ, **env}
    argv = [sys.executable, "-m", "tomqueue.worker", "--app", "tests.obs_app"]
    argv += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1", *args]
    proc = subprocess.Popen(argv, cwd=ROOT, env=environ)
    tq.processes.append(proc)
    return proc


def failed(tq, job_id):
    row = tq.job(job_id)
    return row is not None and row["failed_at"] is not None


@pytest.mark.parametrize("processes", [1, 2])
def test_worker_metrics_count_every_outcome_exactly(tq, processes):
    port = free_port()
    tq.spawn("deferred")  # releases the retry
    worker = spawn_worker(tq, port, "--processes", str(processes), "--queues", "default")
    wait_until(lambda: scrape(port) is not None, timeout=30, message="the endpoint")

    ok = [tomqueue.enqueue(Succeeds(f"ok {n}")) for n in range(3)]
    twice = tomqueue.enqueue(FailsTwice("twice"))
    once = tomqueue.enqueue(FailsOnce("once"))
    overrun = tomqueue.enqueue(Overruns("overrun"))
    # waiting: one in a queue this worker does not serve, one far in the future
    tomqueue.enqueue(Succeeds("elsewhere"), queue="elsewhere")
    tomqueue.enqueue(Succeeds("later"), run_at=datetime.now(UTC) + timedelta(hours=1))

    wait_until(lambda: all(tq.job(j) is None for j in ok), timeout=30, message="successes")
    wait_until(
        lambda: all(failed(tq, j) for j in (twice, once, overrun)), timeout=40, message="failures"
    )

    def settled():  # the metrics are recorded just after the row is written, and the
        # SQL gauges are cached for two seconds: poll until both have caught up
        values = scrape(port)
        done = (
            completed(values, Overruns, "timeout") == 1
            and completed(values, FailsTwice, "failed") == 1
            and durations(values, Succeeds) == 3
            and value(values, "tomqueue_jobs", state="failed", queue="default") == 3
        )
        return values if done else None

    values = wait_until(settled, timeout=20, message="the metrics of every job")
    assert completed(values, Succeeds, "succeeded") == 3
    assert completed(values, FailsTwice, "retried") == 1
    assert completed(values, FailsTwice, "failed") == 1
    assert completed(values, FailsOnce, "failed") == 1
    assert completed(values, Overruns, "timeout") == 1  # overran: timeout, not failed
    assert completed(values, Overruns, "failed") == 0
    outcomes = {
        dict(labels)["outcome"]
        for (name, labels) in values
        if name == "tomqueue_jobs_completed_total"
    }
    assert outcomes == {"succeeded", "retried", "failed", "timeout"}
    assert durations(values, Succeeds) == 3
    assert durations(values, FailsTwice) == 2
    assert durations(values, FailsOnce) == 1
    assert durations(values, Overruns) == 1
    overrun_seconds = value(
        values, "tomqueue_job_duration_seconds_sum", **{"class": Overruns.class_name()}
    )
    assert 0.5 <= overrun_seconds < 15
    # the SQL gauges
    assert value(values, "tomqueue_jobs", state="failed", queue="default") == 3
    assert value(values, "tomqueue_jobs", state="scheduled", queue="default") == 1
    assert value(values, "tomqueue_jobs", state="queued", queue="default") == 0
    assert value(values, "tomqueue_jobs", state="running", queue="default") == 0
    assert value(values, "tomqueue_jobs", state="queued", queue="elsewhere") == 1
    assert value(values, "tomqueue_oldest_job_age_seconds", queue="elsewhere") > 0
    assert value(values, "tomqueue_oldest_job_age_seconds", queue="default") == 0

    if processes > 1:
        # a child that dies keeps its counts in the sums: SIGKILL both, wait for the new ones
        children = psutil.Process(worker.pid).children()
        assert len(children) == 2
        for child in children:
            child.kill()
        wait_until(
            lambda: (
                {c.pid for c in psutil.Process(worker.pid).children()}.isdisjoint(
                    {c.pid for c in children}
                )
                and len(psutil.Process(worker.pid).children()) == 2
            ),
            timeout=30,
            message="two fresh children",
        )
        marker = tomqueue.enqueue(Succeeds("after the kill"))
        wait_until(lambda: tq.job(marker) is None, timeout=30)
        after = wait_until(
            lambda: (v := scrape(port)) and completed(v, Succeeds, "succeeded") == 4 and v,
            timeout=20,
            message="the new child's count added to the old ones",
        )
        assert completed(after, FailsTwice, "retried") == 1
        assert completed(after, Overruns, "timeout") == 1

    metrics_dir = None
    if processes > 1:
        [child] = psutil.Process(worker.pid).children()[:1]
        metrics_dir = child.environ().get("PROMETHEUS_MULTIPROC_DIR")
        assert metrics_dir and os.path.isdir(metrics_dir)
    assert stop_process(worker) == 0
    if metrics_dir is not None:
        assert not os.path.exists(metrics_dir)  # the supervisor's directory is cleaned up


def test_a_job_whose_worker_dies_is_counted_as_crashed(tq):
    port = free_port()
    env = {
        "TOMQUEUE_ORPHAN_GRACE": "0.5",
        "TOMQUEUE_SWEEP_INTERVAL": "0.5",
        "TOMQUEUE_MAX_CRASHES": "1",
    }
    worker = spawn_worker(tq, port, "--app", "tests.jobs", "--processes", "2", **env)
    wait_until(lambda: scrape(port) is not None, timeout=30, message="the endpoint")
    job_id = tomqueue.enqueue(KillsItsWorker("poison"))
    wait_until(lambda: failed(tq, job_id), timeout=60, message="the poison job failed")

    def counted():
        values = scrape(port)
        return values if completed(values, KillsItsWorker, "failed") == 1 else None

    values = wait_until(counted, timeout=20, message="crashed and failed counted")
    assert completed(values, KillsItsWorker, "crashed") == 1  # the sweep took it back once
    assert completed(values, KillsItsWorker, "failed") == 1  # then refused as poison
    assert durations(values, KillsItsWorker) == 0  # refused: it never ran to an end
    assert stop_process(worker) == 0


def test_deferred_metrics_time_how_late_jobs_were_released(tq):
    port = free_port()
    argv = [sys.executable, "-m", "tomqueue.deferred", "--metrics-port", str(port)]
    proc = subprocess.Popen([*argv, "--metrics-host", "127.0.0.1"], cwd=ROOT, env=tq.environ)
    tq.processes.append(proc)
    wait_until(lambda: scrape(port) is not None, timeout=30, message="the endpoint")
    soon = datetime.now(UTC) + timedelta(seconds=1)
    ids = [tomqueue.enqueue(Succeeds(f"soon {n}"), run_at=soon) for n in range(3)]
    named = tomqueue.enqueue(Succeeds("billing soon"), run_at=soon, queue="billing")
    wait_until(
        lambda: all(tq.job(j)["released_at"] is not None for j in [*ids, named]),
        timeout=30,
        message="the releases",
    )
    values = wait_until(
        lambda: (
            (v := scrape(port))
            and value(v, "tomqueue_release_lateness_seconds_count", queue="default") == 3
            # no worker runs: the released jobs wait, and the (cached) gauges say so
            and value(v, "tomqueue_jobs", state="queued", queue="default") == 3
            and v
        ),
        timeout=10,
        message="the lateness of three releases, and three queued jobs",
    )
    assert value(values, "tomqueue_release_lateness_seconds_count", queue="billing") == 1
    late = value(values, "tomqueue_release_lateness_seconds_sum", queue="default")
    assert 0 <= late < 3 * 5  # released within a few seconds of their run_at
    assert value(values, "tomqueue_jobs", state="queued", queue="billing") == 1
    assert stop_process(proc) == 0


def test_a_busy_metrics_port_stops_the_worker_with_one_line(tq):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [
                *(sys.executable, "-m", "tomqueue.worker", "--app", "tests.jobs"),
                *("--metrics-port", str(port), "--metrics-host", "127.0.0.1"),
            ],
            cwd=ROOT,
            env=tq.environ,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"error: cannot serve metrics on 127.0.0.1:{port}" in result.stderr
