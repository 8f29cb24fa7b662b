"""Supervisor: runs several worker processes and restarts any that die.

As in the Ruby original, one parent watches N children. A child that exits on its own or
is killed is restarted (after a pause that grows if it keeps dying at once); SIGTERM or
SIGINT to the supervisor is passed on, so every child finishes the jobs in hand, and the
supervisor exits 0 once they have. Children get SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, child_argv: list[str], processes: int) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.child_argv = child_argv
        self.processes = processes
        self.children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self.restarts = 0
        self._stopping = threading.Event()
        self._backoff = [1.0] * processes
        self._started_at = [0.0] * processes

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("supervisor received %s: stopping the workers", signal.strsignal(signum))
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _spawn(self, index: int) -> None:
        child = subprocess.Popen(self.child_argv, preexec_fn=_die_with_parent)
        self.children[index] = child
        self._started_at[index] = time.monotonic()
        log.info("supervisor started worker %s (pid %s)", index, child.pid)

    def run(self) -> int:
        for index in range(self.processes):
            self._spawn(index)
        next_start = [0.0] * self.processes
        while not self._stopping.is_set():
            now = time.monotonic()
            for index, child in enumerate(self.children):
                if child is None:
                    if now >= next_start[index]:
                        self._spawn(index)
                    continue
                code = child.poll()
                if code is None:
                    continue
                lived = now - self._started_at[index]
                self._backoff[index] = next_backoff(self._backoff[index], code, lived)
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                log.warning(
                    "worker %s (pid %s) died with %s after %.1fs; restarting in %.0fs",
                    index,
                    child.pid,
                    how,
                    lived,
                    self._backoff[index],
                )
                self.children[index] = None
                self.restarts += 1
                next_start[index] = now + self._backoff[index]
            self._stopping.wait(0.2)
        return self._shutdown()

    def _shutdown(self) -> int:
        alive = [c for c in self.children if c is not None and c.poll() is None]
        for child in alive:
            child.send_signal(signal.SIGTERM)
        for child in alive:
            child.wait()
        log.info("supervisor stopped; %s restart(s) during its life", self.restarts)
        return 0


def next_backoff(previous: float, exit_code: int, lived: float) -> float:
    """Seconds to wait before restarting a child that died.

    A child that exits with an error within seconds of starting is in a crash loop of its
    own (a bad --app, a wrong setting): restarts back off, up to 30 s. A child killed by a
    signal (SIGKILL by an operator or the OOM killer, a segfault) or one that lived a while
    is back in a second: backing off there would let a burst of kills starve the queue, and
    a job that kills its worker again and again is stopped by the poison rule instead.
    """
    if exit_code < 0 or lived > 5:
        return 1.0
    return min(previous * 2, 30.0)


def child_command(apps: tuple[str, ...], concurrency: int, log_level: str) -> list[str]:
    argv = [sys.executable, "-m", "tomqueue.worker", "--concurrency", str(concurrency)]
    for app in apps:
        argv += ["--app", app]
    return [*argv, "--log-level", log_level]
