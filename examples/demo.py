"""The demo: enqueue real jobs, run tomqueue-worker and tomqueue-deferred, watch them finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_jobs import ChargeCard, Greet, NightlyReport

import tomqueue

BIN = Path(sys.executable).parent


def main() -> int:
    app = tomqueue.App(tomqueue.current_settings())
    try:
        return demo(app)
    finally:
        app.close()


def demo(app: tomqueue.App) -> int:
    admin = app.store.admin  # what `tomqueue jobs`, `retry` and `delete` use
    while leftovers := admin.list_jobs(limit=1000):  # a clean slate for the demo's database
        for row in leftovers:
            admin.delete(row.id)
    print("1. enqueueing: 5 greetings, a report due in 3 s, a payment that will fail")
    greet_ids = tomqueue.enqueue_many([Greet(n) for n in ["Ada", "Grace", "Linus", "Guido", "Tom"]])
    report_id = tomqueue.enqueue(
        NightlyReport("sales"), run_at=datetime.now(UTC) + timedelta(seconds=3)
    )
    charge_id = tomqueue.enqueue(ChargeCard("4242"))
    print(f"   ids: greetings {greet_ids}, report {report_id}, payment {charge_id}")

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent))
    print("2. starting tomqueue-worker --concurrency 2 and tomqueue-deferred")
    worker = subprocess.Popen(
        [
            str(BIN / "tomqueue-worker"),
            "--app",
            "demo_jobs",
            "--concurrency",
            "2",
            "--log-level",
            "WARNING",
        ],
        env=env,
    )
    deferred = subprocess.Popen([str(BIN / "tomqueue-deferred"), "--log-level", "WARNING"], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pending = [r for r in admin.list_jobs() if r.failed_at is None]
            failed = admin.list_jobs(failed_only=True)
            print(f"   … {len(pending)} pending, {len(failed)} failed")
            if not pending and failed:
                break
            time.sleep(1)
        else:
            print("demo: jobs did not finish in 60 s", file=sys.stderr)
            return 1
    finally:
        for proc in (worker, deferred):
            proc.send_signal(signal.SIGTERM)
        for proc in (worker, deferred):
            proc.wait(30)
    print("3. every job done; the failed payment is kept for a person:")
    subprocess.run([str(BIN / "tomqueue"), "jobs", "--failed"], check=True)
    row = admin.get(charge_id)
    assert row is not None and row.failed_at is not None
    print(f"   attempts={row.attempts}, last_error={row.last_error.splitlines()[0]!r}")
    print(
        f"   retry it with: tomqueue retry {charge_id}   or remove it: tomqueue delete {charge_id}"
    )
    print(f"4. worker exit code {worker.returncode}, deferred exit code {deferred.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
