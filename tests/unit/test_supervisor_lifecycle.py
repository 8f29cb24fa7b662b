"""The supervisor's life cycle with stand-in children (tiny Python processes, no servers):
recycling after a clean exit, a graceful stop, the shutdown timeout and a forced stop."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_until
from tomqueue.worker.supervisor import Supervisor

# A stand-in worker: writes its pid into a directory once its SIGTERM handling is set up
# (so a test knows when a signal will be handled as intended), then behaves as told.
CHILD = """
import os, signal, sys, time
directory, behaviour = sys.argv[1], sys.argv[2]
if behaviour == "ignores-sigterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif behaviour == "finishes-on-sigterm":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
open(os.path.join(directory, str(os.getpid())), "w").close()
if behaviour == "exits-0":
    sys.exit(0)
if behaviour == "exits-1":
    sys.exit(1)
time.sleep(600)
"""


class Running:
    """A supervisor on a thread, as the CLI runs it on the main thread."""

    def __init__(self, supervisor: Supervisor, directory: Path) -> None:
        self.supervisor = supervisor
        self.directory = directory
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.exit_code = self.supervisor.run()

    def pids(self) -> set[int]:
        """Every child started so far, once it was ready."""
        return {int(p.name) for p in self.directory.iterdir()}

    def stop_and_wait(self, *signums: int, timeout: float = 10.0) -> float:
        """Send stop requests; return the seconds until run() returned."""
        started = time.monotonic()
        for signum in signums:
            self.supervisor.stop(signum)
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "supervisor did not return"
        return time.monotonic() - started


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[object]:
    started: list[Running] = []

    def start(behaviour: str, processes: int = 2, shutdown_timeout: float = 30.0) -> Running:
        directory = tmp_path / f"run{len(started)}"
        directory.mkdir()
        argv = [sys.executable, "-c", CHILD, str(directory), behaviour]
        running = Running(Supervisor(argv, processes, shutdown_timeout), directory)
        started.append(running)
        return running

    yield start
    for running in started:  # never leave a child behind, whatever the test did
        if running.thread.is_alive():
            running.supervisor.stop(signal.SIGTERM)
            running.supervisor.stop(signal.SIGTERM)
            running.thread.join(10)
        for pid in running.pids():
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()


def gone(pid: int) -> bool:
    """Ended and reaped (the supervisor waits for its children)."""
    return not psutil.pid_exists(pid)


def test_a_child_that_exits_cleanly_is_replaced_at_once(supervise, caplog):
    caplog.set_level(logging.INFO, logger="tomqueue.worker.supervisor")
    running = supervise("exits-0")
    # 10 starts would take over a minute if clean exits backed off (2, 4, 8 ... s)
    wait_until(lambda: len(running.pids()) >= 10, timeout=10, message="10 children started")
    running.stop_and_wait(signal.SIGTERM)
    assert running.supervisor.recycles >= 8 and running.supervisor.restarts == 0
    assert running.exit_code == 0
    assert "exited cleanly" in caplog.text and "died" not in caplog.text


def test_a_child_in_a_crash_loop_still_backs_off(supervise):
    running = supervise("exits-1", processes=1)
    wait_until(lambda: len(running.pids()) >= 2, timeout=10, message="first restart")
    running.stop_and_wait(signal.SIGTERM)
    starts = sorted(p.stat().st_mtime for p in running.directory.iterdir())
    assert starts[1] - starts[0] >= 1.9, "an error exit right after start was not backed off"
    assert running.supervisor.restarts >= 1 and running.supervisor.recycles == 0


def test_children_that_finish_on_sigterm_give_a_graceful_stop(supervise, caplog):
    caplog.set_level(logging.INFO, logger="tomqueue.worker.supervisor")
    running = supervise("finishes-on-sigterm")
    wait_until(lambda: len(running.pids()) == 2, message="both children ready")
    took = running.stop_and_wait(signal.SIGTERM)
    assert running.exit_code == 0 and took < 5
    assert all(gone(pid) for pid in running.pids())
    assert "every worker finished its jobs" in caplog.text and "SIGKILL" not in caplog.text


def test_children_still_busy_at_the_shutdown_timeout_are_killed(supervise, caplog):
    running = supervise("ignores-sigterm", shutdown_timeout=1.0)
    wait_until(lambda: len(running.pids()) == 2, message="both children ready")
    took = running.stop_and_wait(signal.SIGTERM)
    assert 1.0 <= took < 4, f"stopped after {took:.1f}s with a 1 s shutdown timeout"
    assert running.exit_code == 0
    assert all(gone(pid) for pid in running.pids())
    killed = [r.getMessage() for r in caplog.records if "SIGKILL" in r.getMessage()]
    assert len(killed) == 1 and "after the 1s shutdown timeout" in killed[0]
    assert all(f"(pid {pid})" in killed[0] for pid in running.pids())


def test_a_second_signal_kills_the_children_at_once(supervise, caplog):
    caplog.set_level(logging.INFO, logger="tomqueue.worker.supervisor")
    running = supervise("ignores-sigterm", shutdown_timeout=60.0)
    wait_until(lambda: len(running.pids()) == 2, message="both children ready")
    running.supervisor.stop(signal.SIGTERM)
    # the children got SIGTERM (ignored): the supervisor is now waiting out its timeout
    wait_until(lambda: "asking 2 worker(s) to finish" in caplog.text, message="graceful stop begun")
    took = running.stop_and_wait(signal.SIGINT)
    assert took < 3, f"a second signal took {took:.1f}s to stop the children"
    assert running.exit_code == 128 + signal.SIGINT
    assert all(gone(pid) for pid in running.pids())
    assert "received SIGINT again: killed worker 0 (pid" in caplog.text
