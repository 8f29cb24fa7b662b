"""Worker: the tomqueue-worker process — a consumer thread feeding N slot threads."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections import Counter
from types import FrameType
from typing import TYPE_CHECKING

from tomqueue.broker import BROKER_FAILURES
from tomqueue.broker.priority_consumer import PriorityConsumer
from tomqueue.settings import mask_url
from tomqueue.sweep import Sweeper
from tomqueue.worker.attempts import Attempts
from tomqueue.worker.context import WorkContext
from tomqueue.worker.layers import perform
from tomqueue.worker.lease import WorkerLease
from tomqueue.worker.outcome import Outcome
from tomqueue.worker.stack import StackParts

if TYPE_CHECKING:  # the App makes these; they only need its type
    from tomqueue.app import App

log = logging.getLogger(__name__)

# exit code of a worker that had to leave a job thread it could not stop (EX_SOFTWARE):
# the process must end so that its lease, and with it the job's lock, dies
EXIT_STUCK_JOB = 70


class Worker:
    """Runs jobs with ``concurrency`` slots until ``stop()`` (or SIGTERM/SIGINT)."""

    def __init__(
        self,
        runtime: App,
        concurrency: int = 1,
        max_jobs: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.runtime = runtime
        self.concurrency = concurrency
        self.max_jobs = max_jobs
        self.consumer = PriorityConsumer(runtime.settings, concurrency)
        self.lease = WorkerLease(runtime.settings.database_url, runtime.settings.lease_timeout)
        self._stopping = threading.Event()
        self.attempts = Attempts()
        self.exit_code = 0
        self.stack = runtime.build_worker_stack(
            StackParts(
                runtime=runtime,
                source=self.consumer,
                should_stop=self._stopping.is_set,
                lease=self.lease,
                on_stuck=self._job_stuck,
            )
        )
        self.jobs_run = 0
        self.outcomes: Counter[Outcome] = Counter()
        self._outcomes_lock = threading.Lock()
        self._slots: list[threading.Thread] = []
        # named queues found by the sweep thread, for the pump thread to subscribe to
        self._found_queues: list[str] = []

    def stop(self) -> None:
        """Finish the jobs in hand, then return from ``run``."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            log.info(
                "received %s: finishing the jobs in hand, then exiting", signal.strsignal(signum)
            )
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _job_stuck(self, ctx: WorkContext) -> None:
        """A job thread could not be stopped: take no more jobs, let the other slots
        finish theirs, then exit with EXIT_STUCK_JOB (the supervisor restarts us)."""
        self.exit_code = EXIT_STUCK_JOB
        self.stop()

    def _slot(self) -> None:
        while not self._stopping.is_set():
            if not self.lease.held:
                # no new job without a lease: a row locked now could be taken over
                self.lease.wait_held(timeout=0.5)
                continue
            name = self.lease.name
            ctx = WorkContext(
                worker_name=name, lease_key=self.lease.key, locked_by=self.attempts.begin(name)
            )
            outcome = self.stack.invoke(ctx, perform)
            if outcome is Outcome.STUCK:
                return  # the attempt stays in flight: its row keeps its lock till we exit
            self.attempts.end(ctx.locked_by)
            if outcome is Outcome.IDLE:
                continue
            with self._outcomes_lock:
                self.outcomes[outcome] += 1
                if outcome.ran:
                    self.jobs_run += 1
                done = self.jobs_run
            if self.max_jobs is not None and done >= self.max_jobs:
                self.stop()

    def _sweep_loop(self) -> None:
        """Recover orphans and lost notifications now and then (safe in every worker)."""
        sweeper = Sweeper(
            self.runtime, own_lease_key=self.lease.key, own_attempts=self.attempts.in_flight
        )
        interval = self.runtime.settings.sweep_interval.total_seconds()
        while True:
            self._find_queues()
            if self._stopping.wait(interval * random.uniform(0.8, 1.2)):
                return
            try:
                sweeper.sweep()
            except Exception as exc:  # a sweep is retried next interval; never kill a worker
                log.warning("sweep failed (%s: %s); will try again", type(exc).__name__, exc)

    def _find_queues(self) -> None:
        """A worker serving every queue looks for new named queues once per sweep; the
        pump thread subscribes to them (pika is used on that thread only)."""
        if not self.runtime.settings.queues.serves_all:
            return
        try:
            self._found_queues = self.runtime.store.worker.named_queues()
        except Exception as exc:  # looked for again at the next sweep
            log.warning("could not list named queues (%s: %s)", type(exc).__name__, exc)

    def run(self) -> int:
        """The main loop; returns the process exit code (0 after a graceful stop)."""
        self.lease.acquire()
        self.runtime.ensure_prefix_bound(attempts=None, should_stop=self._stopping.is_set)
        log.info(
            "worker %s started: concurrency %s, queues %s, prefix %r, broker %s",
            self.lease.name,
            self.concurrency,
            self.runtime.settings.queues.describe(),
            self.runtime.settings.prefix,
            mask_url(self.runtime.settings.amqp_url),
        )
        self._slots = [
            threading.Thread(target=self._slot, name=f"tomqueue-slot-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in self._slots:
            thread.start()
        sweeper = threading.Thread(target=self._sweep_loop, name="tomqueue-sweeper", daemon=True)
        sweeper.start()
        try:
            self._pump()
        finally:
            self.consumer.close() if self.consumer.connected else None
            if "announcer" in self.runtime.__dict__:
                # jobs that enqueued: their announcements go out before we exit (bounded)
                self.runtime.announcer.flush(self.runtime.settings.publish_timeout.total_seconds())
            self.runtime.publisher.close()
            if self.exit_code == EXIT_STUCK_JOB:
                # keep the lease: a stuck job thread may still be running; the lease ends
                # with the process, and only then may the orphan path take the job over
                log.critical("worker %s exits: a job thread could not be stopped", self.lease.name)
            else:
                self.lease.release()
        log.info(
            "worker %s stopped: %s; (statements, jobs) grouped: %s",
            self.lease.name,
            dict(self.outcomes),
            self.runtime.store.worker.batching(),
        )
        return self.exit_code

    def _pump(self) -> None:
        """Keep the AMQP connection alive and serving until every slot has finished."""
        delay = 0.2
        while any(t.is_alive() for t in self._slots):
            try:
                if not self.consumer.connected:
                    self.consumer.connect()
                    if delay > 0.2:
                        log.warning("connected to RabbitMQ again")
                    delay = 0.2
                found, self._found_queues = self._found_queues, []
                if found:  # once per discovery, not on every turn of the pump
                    self.consumer.add_queues(found)
                self.consumer.run_once(0.2)
            except BROKER_FAILURES as exc:
                self.consumer.lost()
                log.warning(
                    "RabbitMQ at %s unavailable (%s); reconnecting in %.1fs",
                    mask_url(self.runtime.settings.amqp_url),
                    exc,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
