"""Fixtures: real PostgreSQL and RabbitMQ, a migrated template database cloned per test,
and a unique queue prefix per test whose queues are deleted afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import psycopg
import pytest

import tomqueue
from tomqueue.app import App
from tomqueue.broker import Topology, delete_topology
from tomqueue.default_app import default_app, reset_configuration
from tomqueue.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
# the CLI fits its tables to COLUMNS when set (as a terminal or pytest-xdist may set it):
# tests read its output whole, as a pipe gets it
os.environ.pop("COLUMNS", None)
BASE_DB_URL = os.environ.get(
    "TOMQUEUE_TEST_DATABASE_URL",
    "postgresql+psycopg://tomqueue:tomqueue@127.0.0.1:5432/tomqueue",
)
AMQP_URL = os.environ.get("TOMQUEUE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# one template per pytest session, so that two sessions on one machine (a developer's and
# a helper's, say) never drop each other's template mid-run
TEMPLATE = f"tomqueue_test_template_{os.getpid()}"


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _servers_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("TOMQUEUE_REQUIRE_SERVERS"))


@pytest.fixture(scope="session")
def servers() -> None:
    """Skip politely without servers on a laptop; fail in CI, where they are required."""
    problems = []
    try:
        psycopg.connect(libpq(BASE_DB_URL), connect_timeout=3).close()
    except Exception as exc:
        problems.append(f"PostgreSQL: {exc}")
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except Exception as exc:
        problems.append(f"RabbitMQ: {type(exc).__name__} {exc}")
    if problems:
        message = "servers unavailable (run bin/servers-start): " + "; ".join(problems)
        if _servers_required():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def template_database(servers: None) -> Iterator[str]:
    """A database migrated once per session, cloned by every test, dropped at the end."""
    with psycopg.connect(libpq(BASE_DB_URL), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEMPLATE}")
    url = with_database(BASE_DB_URL, TEMPLATE)
    upgrade(url)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(
            """CREATE TABLE test_runs (
                id bigserial PRIMARY KEY, label text NOT NULL, event text NOT NULL,
                detail text NOT NULL DEFAULT '', pid integer,
                at timestamptz NOT NULL DEFAULT clock_timestamp())"""
        )
    yield url
    with psycopg.connect(libpq(BASE_DB_URL), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@dataclass
class TestEnv:
    """One test's private database and queue prefix, plus helpers to look at them."""

    database_url: str
    amqp_url: str
    prefix: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def app(self) -> App:
        return default_app()

    @property
    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TOMQUEUE_DATABASE_URL=self.database_url,
            TOMQUEUE_AMQP_URL=self.amqp_url,
            TOMQUEUE_PREFIX=self.prefix,
            PYTHONPATH=str(ROOT),
        )
        return env

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq(self.database_url), autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return list(cur.fetchall()) if cur.description else []

    def scalar(self, query: str, *params: Any) -> Any:
        rows = self.sql(query, *params)
        return rows[0][0] if rows else None

    def events(self, label: str) -> list[str]:
        return [
            r[0]
            for r in self.sql("SELECT event FROM test_runs WHERE label = %s ORDER BY id", label)
        ]

    def count_runs(self, label: str, event: str = "perform") -> int:
        return int(
            self.scalar(
                "SELECT count(*) FROM test_runs WHERE label = %s AND event = %s", label, event
            )
        )

    def job(self, job_id: int) -> dict[str, Any] | None:
        with psycopg.connect(libpq(self.database_url), autocommit=True) as conn:
            cur = conn.execute("SELECT * FROM tomqueue_jobs WHERE id = %s", (job_id,))
            row = cur.fetchone()
            if row is None:
                return None
            assert cur.description is not None
            return {col.name: value for col, value in zip(cur.description, row, strict=True)}

    def pending_count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM tomqueue_jobs WHERE failed_at IS NULL"))

    def flush_announcements(self, timeout: float = 30.0) -> bool:
        """Wait until this process's background announcements are confirmed or given up
        (enqueue returns before RabbitMQ has the message)."""
        app = default_app()
        return "announcer" not in app.__dict__ or app.announcer.flush(timeout)

    def queue_depth(self, queue: str) -> int:
        self.flush_announcements()  # what was enqueued so far has reached the broker
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            frame = connection.channel().queue_declare(queue, passive=True)
            return int(frame.method.message_count)
        except pika.exceptions.ChannelClosedByBroker:
            return 0  # not declared yet
        finally:
            if connection.is_open:
                connection.close()

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start a tomqueue process (``worker`` or ``deferred``) with this test's settings."""
        kind, *rest = args
        module = {"worker": "tomqueue.worker", "deferred": "tomqueue.deferred"}[kind]
        argv = [sys.executable, "-m", module, *rest]
        if kind == "worker" and "--app" not in rest:
            argv += ["--app", "tests.jobs"]
        proc = subprocess.Popen(argv, cwd=ROOT, env=env or self.environ)
        self.processes.append(proc)
        return proc

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tomqueue", *args],
            cwd=ROOT,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=60,
        )


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll an observable state until it holds (never sleep-then-assert)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture
def tq(template_database: str) -> Iterator[TestEnv]:
    name = f"tq_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(BASE_DB_URL), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    env = TestEnv(
        database_url=with_database(BASE_DB_URL, name),
        amqp_url=AMQP_URL,
        prefix=f"tqtest.{name}",
    )
    tomqueue.configure(database_url=env.database_url, amqp_url=env.amqp_url, prefix=env.prefix)
    try:
        yield env
    finally:
        for proc in env.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reset_configuration()
        try:
            named = [
                queue
                for (queue,) in env.sql(
                    "SELECT queue FROM tomqueue_jobs WHERE queue IS NOT NULL UNION "
                    "SELECT queue FROM tomqueue_job_history WHERE queue IS NOT NULL"
                )
            ]
        except Exception:
            named = []
        try:
            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            delete_topology(connection.channel(), Topology(env.prefix), named)
            connection.close()
        except Exception:
            pass
        with psycopg.connect(libpq(BASE_DB_URL), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class InThreads:
    """Runs in-process workers or managers (anything with run() and stop()) on threads,
    and stops and joins them all at teardown, as SIGTERM would in a deployment."""

    def __init__(self) -> None:
        self.started: list[tuple[Any, threading.Thread]] = []

    def start(self, runnable: Any) -> Any:
        thread = threading.Thread(target=runnable.run, daemon=True)
        thread.start()
        self.started.append((runnable, thread))
        return runnable

    def stop_all(self) -> None:
        for runnable, _ in self.started:
            runnable.stop()
        for _, thread in self.started:
            thread.join(30)


@pytest.fixture
def run_worker(tq: TestEnv) -> Iterator[Callable[..., Any]]:
    """Start in-process workers (threads) on the test's settings; stopped at teardown."""
    from tomqueue.worker.process import Worker

    threads = InThreads()
    yield lambda concurrency=1, **kwargs: threads.start(
        Worker(default_app(), concurrency=concurrency, **kwargs)
    )
    threads.stop_all()


@pytest.fixture
def run_deferred(tq: TestEnv) -> Iterator[Callable[..., Any]]:
    """Start in-process deferred managers (threads); stopped at teardown."""
    from tomqueue.deferred.manager import DeferredManager

    threads = InThreads()
    # an App of its own: its own publisher connection, as in a separate process
    yield lambda: threads.start(DeferredManager(App(default_app().settings)))
    threads.stop_all()


@pytest.fixture
def run_all(run_worker: Callable[..., Any], run_deferred: Callable[..., Any]) -> Callable[..., Any]:
    """A worker and a deferred manager: what a deployment runs."""

    def start(concurrency: int = 1) -> Any:
        run_deferred()
        return run_worker(concurrency=concurrency)

    return start
