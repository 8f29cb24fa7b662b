"""Supervisor: runs several worker processes, restarts any that end, stops them on time.

As in the Ruby original, one parent watches N children. A child that ends on its own is
replaced: at once after a clean exit (a child that did its ``--max-jobs`` is recycled), after
a pause that grows if it keeps failing right after starting (a crash loop of its own), and
within a second if it was killed. SIGTERM or SIGINT to the supervisor is passed on as
SIGTERM, so every child finishes the jobs in hand; a child still busy after the shutdown
timeout, or any child when a second signal comes, is SIGKILLed, and the jobs it held run
again on other workers through the orphan path. Children get SIGTERM if the supervisor
itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
POLL_INTERVAL = 0.1  # seconds between looks at the children and at the stop requests
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Keeps ``processes`` children running ``child_argv`` until ``stop()``."""

    def __init__(
        self,
        child_argv: list[str],
        processes: int,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        on_child_ended: Callable[[int], None] | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        if shutdown_timeout < 0:
            raise ValueError("shutdown_timeout must not be negative")
        self.child_argv = child_argv
        self.processes = processes
        self.shutdown_timeout = shutdown_timeout
        self.on_child_ended = on_child_ended  # told each ended child's pid (metrics)
        self.children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self.restarts = 0  # children replaced after a failure or a kill
        self.recycles = 0  # children replaced after a clean exit (their --max-jobs done)
        # stop requests, one signal number each. A signal handler only appends here:
        # deque.append takes no lock, where Event.set could deadlock against the main
        # thread it interrupts (it may hold the Event's own lock at that moment)
        self._stop_requests: deque[int] = deque()
        self._backoff = [0.0] * processes
        self._started_at = [0.0] * processes
        self._next_start = [0.0] * processes

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop: the first request is graceful, a second kills the children now.

        Safe to call from a signal handler or from another thread.
        """
        self._stop_requests.append(signum)

    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.stop(signum)  # logged by the main loop, outside the handler

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self) -> int:
        """Supervise until asked to stop; returns the process exit code.

        0 after a stop, graceful or at the shutdown timeout (no job is lost either way);
        128 + the signal number when a second signal forced the children down at once.
        """
        for index in range(self.processes):
            if not self._stop_requests:
                self._spawn(index)
        while not self._stop_requests:
            self._tend(time.monotonic())
            time.sleep(POLL_INTERVAL)
        return self._shutdown()

    def _spawn(self, index: int) -> None:
        child = subprocess.Popen(self.child_argv, preexec_fn=_die_with_parent)
        self.children[index] = child
        self._started_at[index] = time.monotonic()
        log.info("supervisor started worker %s (pid %s)", index, child.pid)

    def _tend(self, now: float) -> None:
        """Replace every child that has ended, once its restart delay has passed."""
        for index, child in enumerate(self.children):
            if child is not None:
                code = child.poll()
                if code is None:
                    continue
                self._ended(index, child, code, now)
            if now >= self._next_start[index] and not self._stop_requests:
                self._spawn(index)

    def _ended(self, index: int, child: subprocess.Popen[bytes], code: int, now: float) -> None:
        lived = now - self._started_at[index]
        delay = next_backoff(self._backoff[index], code, lived)
        self._backoff[index] = delay
        self._next_start[index] = now + delay
        self.children[index] = None
        if self.on_child_ended is not None:
            self.on_child_ended(child.pid)
        if code == 0:
            self.recycles += 1
            log.info(
                "worker %s (pid %s) exited cleanly after %.1fs (its --max-jobs done, or "
                "stopped on its own); starting a fresh one at once",
                index,
                child.pid,
                lived,
            )
            return
        self.restarts += 1
        how = _signal_name(-code) if code < 0 else f"exit code {code}"
        log.warning(
            "worker %s (pid %s) died with %s after %.1fs; restarting in %.0fs",
            index,
            child.pid,
            how,
            lived,
            delay,
        )

    def _shutdown(self) -> int:
        alive = {i: c for i, c in enumerate(self.children) if c is not None and c.poll() is None}
        log.info(
            "supervisor received %s: asking %s worker(s) to finish the jobs in hand "
            "(waiting up to %gs; signal again to kill them now)",
            _signal_name(self._stop_requests[0]),
            len(alive),
            self.shutdown_timeout,
        )
        for child in alive.values():
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout
        while True:
            alive = {i: c for i, c in alive.items() if c.poll() is None}
            if not alive:
                log.info(
                    "supervisor stopped: every worker finished its jobs; "
                    "%s restart(s) and %s recycle(s) during its life",
                    self.restarts,
                    self.recycles,
                )
                return 0
            if len(self._stop_requests) > 1:
                second = self._stop_requests[1]
                self._kill(alive, f"received {_signal_name(second)} again")
                return 128 + second
            if time.monotonic() >= deadline:
                self._kill(
                    alive, f"still busy after the {self.shutdown_timeout:g}s shutdown timeout"
                )
                return 0
            time.sleep(POLL_INTERVAL)

    def _kill(self, alive: dict[int, subprocess.Popen[bytes]], reason: str) -> None:
        for child in alive.values():
            child.kill()
        for child in alive.values():
            child.wait()
        log.warning(
            "supervisor %s: killed %s with SIGKILL; the jobs they held run again on other "
            "workers (orphan recovery)",
            reason,
            ", ".join(f"worker {index} (pid {child.pid})" for index, child in alive.items()),
        )


def _signal_name(signum: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(signum).name
    return f"signal {signum}"


def next_backoff(previous: float, exit_code: int, lived: float) -> float:
    """Seconds to wait before replacing a child that ended.

    A clean exit (code 0) is a child recycled after its ``--max-jobs``: it is replaced at
    once, however short its life, since running jobs quickly is no fault. A child that exits
    with an error within seconds of starting is in a crash loop of its own (a bad --app, a
    wrong setting): restarts back off, from 2 s up to 30 s. A child killed by a signal
    (SIGKILL by an operator or the OOM killer, a segfault) or one that lived a while is back
    in a second: backing off there would let a burst of kills starve the queue, and a job
    that kills its worker again and again is stopped by the poison rule instead.
    """
    if exit_code == 0:
        return 0.0
    if exit_code < 0 or lived > 5:
        return 1.0
    return min(max(previous, 1.0) * 2, 30.0)


def run_supervised(
    command: list[str],
    processes: int,
    shutdown_timeout: float,
    on_child_ended: Callable[[int], None] | None = None,
) -> int:
    """Run ``processes`` children of ``command`` until SIGTERM or SIGINT; the exit code."""
    supervisor = Supervisor(command, processes, shutdown_timeout, on_child_ended)
    supervisor.install_signal_handlers()
    return supervisor.run()


def child_command(
    apps: tuple[str, ...],
    concurrency: int,
    log_level: str,
    max_jobs: int | None = None,
    queues: str | None = None,
) -> list[str]:
    """The command line of one child: a plain worker with the supervisor's options
    (``supervise_with_metrics`` adds ``--metrics-multiprocess`` when it serves metrics)."""
    argv = [sys.executable, "-m", "tomqueue.worker", "--concurrency", str(concurrency)]
    for app in apps:
        argv += ["--app", app]
    if max_jobs is not None:
        argv += ["--max-jobs", str(max_jobs)]
    if queues is not None:
        argv += ["--queues", queues]
    return [*argv, "--log-level", log_level]
