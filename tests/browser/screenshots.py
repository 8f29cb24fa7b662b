"""Screenshots of every dashboard page, for a person to look at (``bin/screenshots``).

Seeds a database of its own with a plausible day: jobs of several classes queued,
scheduled and failed with real tracebacks, finished jobs in the history table spread over
the last hours, a job held by a live worker lease; starts a real ``tomqueue-deferred``
(the leader's lease); then photographs each page in headless Chromium into
docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

import tomqueue
from tests.browser.harness import chromium, served
from tomqueue.admin import Admin
from tomqueue.dashboard import create_app
from tomqueue.database import ADVISORY_NAMESPACE
from tomqueue.default_app import default_app

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
CLASSES = ["billing.jobs.SendInvoice", "billing.jobs.ChargeCard", "mail.jobs.Newsletter",
           "reports.jobs.NightlyReport", "search.jobs.Reindex"]  # fmt: skip
TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/billing/jobs.py", line 41, in perform
    response = gateway.charge(self.card, self.amount)
  File "/srv/app/billing/gateway.py", line 88, in charge
    raise GatewayError(f"card {card} declined: {reply['reason']}")
billing.gateway.GatewayError: card 4242 declined: insufficient_funds"""


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def handler(class_name: str, **state: object) -> str:
    return json.dumps({"class": class_name, "state": state, "v": 1}, sort_keys=True)


def seed(conn: psycopg.Connection) -> dict[str, int]:
    conn.execute("TRUNCATE tomqueue_jobs, tomqueue_job_history")
    rng = random.Random(7)
    ids: dict[str, int] = {}

    def insert(class_name: str, run_in: float, **extra: object) -> int:
        row = conn.execute(
            "INSERT INTO tomqueue_jobs (priority, attempts, handler, run_at, queue) "
            "VALUES (%s, 0, %s, now() + make_interval(secs => %s), %s) RETURNING id",
            (
                rng.choice([0, 0, 0, 5, -5]),
                handler(class_name, n=rng.randint(1, 999)),
                run_in,
                extra.get("queue"),
            ),
        ).fetchone()
        assert row is not None
        return int(row[0])

    for index in range(40):
        insert(rng.choice(CLASSES), -rng.uniform(1, 300), queue=rng.choice([None, "billing"]))
        if index % 4 == 0:
            insert(rng.choice(CLASSES), rng.uniform(60, 7200))
    for _ in range(6):
        failed = insert("billing.jobs.ChargeCard", -600, queue="billing")
        conn.execute(
            "UPDATE tomqueue_jobs SET attempts = 25, failed_at = now() - interval '3 minutes', "
            "last_error = %s WHERE id = %s",
            (TRACEBACK, failed),
        )
    ids["failed"] = failed
    ids["running"] = insert("reports.jobs.NightlyReport", -5)
    ids["scheduled"] = insert("mail.jobs.Newsletter", 3600)
    # six hours of finished jobs, busier in the last hour, a burst of failures at one point
    now = datetime.now(UTC)
    history = []
    job_id = 10_000_000
    for minute in range(6 * 60):
        moment = now - timedelta(minutes=minute)
        busy = 30 if minute < 60 else 12
        for _ in range(rng.randint(busy // 2, busy)):
            job_id += 1
            outcome = (
                "failed" if rng.random() < (0.3 if 40 < minute < 48 else 0.02) else "succeeded"
            )
            history.append((job_id, rng.choice(CLASSES), moment, outcome))
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO tomqueue_job_history (job_id, class_name, enqueued_at, started_at, "
            "finished_at, attempts, outcome, duration_seconds, expires_at) VALUES "
            "(%s, %s, %s - interval '2 s', %s - interval '1 s', %s, 1, %s, 0.8, now() + interval '1 day')",
            [(i, c, m, m, m, o) for i, c, m, o in history],
        )
    return ids


def main() -> int:
    url = os.environ["TOMQUEUE_DATABASE_URL"]
    OUT.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        ids = seed(conn)
    deferred = subprocess.Popen([sys.executable, "-m", "tomqueue.deferred"], cwd=ROOT)
    key = 7001
    try:
        with psycopg.connect(libpq(url), autocommit=True) as lease:
            # a worker's lease and the job it runs (the worker is this connection)
            lease.execute("SELECT pg_advisory_lock(%s::int, %s::int)", (ADVISORY_NAMESPACE, key))
            lease.execute(
                "UPDATE tomqueue_jobs SET locked_by = %s, lock_key = %s, locked_at = now() - "
                "interval '42 s', attempts = 1 WHERE id = %s",
                (f"web-1 pid:4242 key:{key} run:{ids['running']}", key, ids["running"]),
            )
            Admin().republish()  # so the queues page shows messages waiting
            wait = time.monotonic() + 20
            while Admin().deferred().leader is None and time.monotonic() < wait:
                time.sleep(0.2)
            shoot(ids)
    finally:
        deferred.terminate()
        deferred.wait(timeout=20)
    print(f"screenshots in {OUT}")
    return 0


def shoot(ids: dict[str, int]) -> None:
    pages = {
        "overview": "/?hours=6",
        "jobs": "/jobs",
        "jobs-failed": "/jobs?state=failed",
        "job-failed": f"/jobs/{ids['failed']}",
        "job-running": f"/jobs/{ids['running']}",
        "workers": "/workers",
        "queues": "/queues",
    }
    with served(create_app(stats_cache_seconds=0)) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        for name, path in pages.items():
            page.goto(base + path)
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
        page.goto(f"{base}/jobs?state=failed")
        page.get_by_role("button", name="Retry all").click()
        page.wait_for_selector(".confirm")
        page.screenshot(path=str(OUT / "confirm-bulk-retry.png"))
    with served(create_app(token="screenshot-token-0123456789")) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 600})
        page.goto(base + "/")
        page.screenshot(path=str(OUT / "login.png"))


if __name__ == "__main__":
    tomqueue.configure()
    default_app()
    sys.exit(main())
