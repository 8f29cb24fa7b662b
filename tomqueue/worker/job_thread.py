"""JobThread: the long-lived thread that runs one job at a time for a slot.

Reused from job to job, so a job's thread-local resources (a database connection, an HTTP
session) survive between jobs as they would in a plain loop. The hand-over is a pair of
bare locks, the cheapest wake-up CPython has: it happens twice for every job.

A job that overruns is interrupted: ``JobTimeout`` is raised inside it at its next Python
instruction. A job blocked in C (a socket read, a driver call) sees nothing until the call
returns, so the caller waits a grace period for the task to end and must treat a task that
has not ended as still running. An interrupted thread is retired, never reused: a
``JobTimeout`` that arrives late could otherwise end the next job.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

from tomqueue.errors import JobTimeout


def raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Ask CPython to raise ``exc_type`` in ``thread`` at its next Python instruction."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )


class JobThread:
    def __init__(self, name: str) -> None:
        self._go = threading.Lock()
        self._go.acquire()
        self._finished = threading.Lock()
        self._finished.acquire()
        self._task: Callable[[], None] | None = None
        self._state = threading.Lock()
        self._running = False
        self._retired = False
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._retired:
            self._go.acquire()
            task = self._task
            if task is None:
                return
            try:
                try:
                    task()
                finally:
                    with self._state:
                        self._running = False
            except BaseException:  # a JobTimeout that arrived after the task's own handlers
                self._retired = True
            self._finished.release()

    def run(self, task: Callable[[], None], timeout: float) -> bool:
        """Run ``task`` here; True if it ended within ``timeout`` seconds."""
        with self._state:
            self._running = True
        self._task = task
        self._go.release()
        return self._finished.acquire(timeout=timeout)

    def wait(self, timeout: float) -> bool:
        """After ``run`` returned False: True if the task ends within ``timeout``."""
        return self._finished.acquire(timeout=timeout)

    def interrupt(self) -> None:
        """Raise JobTimeout in the running task (once), and retire this thread."""
        with self._state:
            self._retired = True
            if self._running:
                raise_in_thread(self.thread, JobTimeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()
