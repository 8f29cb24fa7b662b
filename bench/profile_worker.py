"""Where one worker's CPU goes: py-spy ``record --gil`` on a ``--concurrency 4`` worker
draining no-op jobs, summed by the package of the innermost frame and by thread.

    .venv/bin/pip install py-spy   # a tool, not a dependency of tomqueue
    PYTHONPATH=. TOMQUEUE_PREFIX=profile .venv/bin/python -m bench.profile_worker [--jobs 30000]

Run against a scratch database (it deletes every row of tomqueue_jobs). To compare with
an older commit, put that commit's tree first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg

import tomqueue
from bench.noop_jobs import Noop

PACKAGES = ("pika", "psycopg", "sqlalchemy", "tomqueue")
_FRAME_PATH = re.compile(r"\(([^:()]+):\d+\)$")


def _count(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM tomqueue_jobs").fetchone()
        return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    dsn = tomqueue.current_settings().database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM tomqueue_jobs")
    for first in range(0, args.jobs, 1000):
        tomqueue.enqueue_many([Noop(n) for n in range(first, min(args.jobs, first + 1000))])
    from tomqueue.default_app import default_app

    default_app().announcer.flush(60)
    worker_argv = [sys.executable, "-m", "tomqueue.worker", "--app", "bench.noop_jobs"]
    worker = subprocess.Popen([*worker_argv, "-c", "4", "--log-level", "WARNING"])
    raw = os.path.join(tempfile.mkdtemp(), "profile.raw")
    try:
        while _count(dsn) > args.jobs - 500:  # past start-up
            time.sleep(0.01)
        before, started = _count(dsn), time.perf_counter()
        record = [py_spy, "record", "--gil", "--threads", "-f", "raw", "-r", "200"]
        subprocess.run(
            [*record, "-d", str(args.seconds), "-p", str(worker.pid), "-o", raw],
            check=True,
            capture_output=True,
        )
        rate = (before - _count(dsn)) / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait()
    by_package: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    with open(raw) as samples:
        for line in samples:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.partition(": ")[2].split(";")
            by_thread[re.sub(r"-\d+", "-N", frames[0])] += int(count)
            match = _FRAME_PATH.search(frames[-1])
            path = match.group(1) if match else ""
            package = next(
                (p for p in PACKAGES if path.startswith(p + "/") or f"/{p}/" in path), "other"
            )
            by_package[package] += int(count)
    total = sum(by_package.values()) or 1
    print(f"one worker, --concurrency 4: {rate:,.0f} jobs/s while profiled")
    for package, count in by_package.most_common():
        print(f"| {package} | {100 * count / total:.0f} % |")
    print(
        "by thread:", ", ".join(f"{t} {100 * c / total:.0f} %" for t, c in by_thread.most_common(3))
    )


if __name__ == "__main__":
    main()
