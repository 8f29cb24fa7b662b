"""bin/bench-deferred: how punctual and how lean the deferred manager is.

1. lateness (job start minus run_at) for 10,000 jobs due within one minute, one worker process
2. 1,000,000 jobs a day ahead: the manager's peak RSS, the broker's message count, and the
   lateness of 1,000 jobs due in the next minute, against the same on an empty table
3. SIGKILL the manager while 1,000 jobs are due in the next 10 s, restart it 2 s later
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import psutil
import psycopg

from bench.report import print_figure_sections

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN = "postgresql://tomqueue:tomqueue@127.0.0.1:5432/tomqueue"
AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
SLOTS = 1000  # distinct run_at values per scenario; jobs share them in equal groups


def setup(name: str) -> dict[str, str]:
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    dsn = f"postgresql://tomqueue:tomqueue@127.0.0.1:5432/{name}"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        BENCH_RESULTS_DSN=dsn,
        TOMQUEUE_DATABASE_URL=dsn.replace("postgresql://", "postgresql+psycopg://"),
        TOMQUEUE_AMQP_URL=AMQP,
        TOMQUEUE_PREFIX=f"benchdef.{name}",
    )
    subprocess.run([BIN / "tomqueue", "migrate"], env=env, check=True, capture_output=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_results (key int, sent double precision, started double precision)"
        )
    return env


def enqueue_spread(
    env: dict[str, str], count: int, start_in: float, spread: float, first_key: int = 0
) -> None:
    """count jobs, run_at spread evenly over [now+start_in, now+start_in+spread]."""
    code = f"""
import time
from datetime import UTC, datetime, timedelta
import tomqueue
from bench.jobs_tomqueue import InsertResult
base = time.time() + {start_in}
slots = min({SLOTS}, {count})
per = {count} // slots
key = {first_key}
for slot in range(slots):
    due = base + {spread} * slot / slots
    n = per if slot < slots - 1 else {count} - per * (slots - 1)
    jobs = [InsertResult(key + i, due) for i in range(n)]
    key += n
    tomqueue.enqueue_many(jobs, run_at=datetime.fromtimestamp(due, UTC))
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


def spawn(env: dict[str, str], *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:], "--log-level", "WARNING"], env=env, cwd=ROOT
    )


def worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn(env, "tomqueue-worker", "--app", "bench.jobs_tomqueue", "--concurrency", "4")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(60)


def done(env: dict[str, str]) -> int:
    with psycopg.connect(env["BENCH_RESULTS_DSN"]) as conn:
        return int(conn.execute("SELECT count(*) FROM bench_results WHERE key >= 0").fetchone()[0])


def wait_done(
    env: dict[str, str],
    count: int,
    timeout: float,
    watch: list[float] | None = None,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while done(env) < count and time.monotonic() < deadline:
        if watch is not None and proc is not None and proc.poll() is None:
            watch.append(psutil.Process(proc.pid).memory_info().rss / 2**20)
        time.sleep(0.25)


def lateness(env: dict[str, str]) -> dict[str, float]:
    with psycopg.connect(env["BENCH_RESULTS_DSN"]) as conn:
        rows = conn.execute("SELECT started - sent FROM bench_results WHERE key >= 0").fetchall()
    late = sorted(r[0] for r in rows)
    if not late:
        return {"ran": 0}
    return {
        "ran": len(late),
        "early (started before run_at)": sum(1 for x in late if x < 0),
        "lateness p50 (ms)": round(late[len(late) // 2] * 1000, 1),
        "lateness p99 (ms)": round(late[min(len(late) - 1, int(len(late) * 0.99))] * 1000, 1),
        "lateness max (ms)": round(late[-1] * 1000, 1),
    }


def broker_messages(prefix: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    total = 0
    for queue in ["high", "normal", "low", "bulk"]:
        total += channel.queue_declare(
            f"{prefix}.balance.{queue}", passive=True
        ).method.message_count
    total += channel.queue_declare(f"{prefix}.deferred", passive=True).method.message_count
    connection.close()
    return total


def scenario_minute(jobs: int) -> dict[str, float]:
    env = setup("tq_bench_def1")
    procs = [worker(env), spawn(env, "tomqueue-deferred")]
    enqueue_spread(env, jobs, start_in=15, spread=60)
    wait_done(env, jobs, timeout=150)
    stop(*procs)
    return {"jobs": jobs, **lateness(env)}


def scenario_million(rows: int, jobs: int) -> dict[str, dict[str, float]]:
    out = {}
    for label, future in (("empty table", 0), (f"{rows:,} future rows", rows)):
        env = setup("tq_bench_def2")
        if future:
            with psycopg.connect(env["BENCH_RESULTS_DSN"], autocommit=True) as conn:
                conn.execute(
                    """INSERT INTO tomqueue_jobs (handler, run_at, priority, created_at, updated_at)
                    SELECT '{"class":"bench.jobs_tomqueue.InsertResult","state":{"key":-2,'
                           || '"sent":0},"v":1}', now() + interval '1 day', 0, now(), now()
                    FROM generate_series(1, %s)""",
                    (future,),
                )
                # a table that has held its rows a while is vacuumed and checkpointed; a
                # fresh bulk load is not, and autovacuum would then run during the figure
                conn.execute("VACUUM (ANALYZE) tomqueue_jobs")
                conn.execute("CHECKPOINT")
        manager = spawn(env, "tomqueue-deferred")
        wrk = worker(env)
        rss: list[float] = []
        time.sleep(3)
        enqueue_spread(env, jobs, start_in=10, spread=30)
        wait_done(env, jobs, timeout=120, watch=rss, proc=manager)
        depth = broker_messages(env["TOMQUEUE_PREFIX"])
        stop(wrk, manager)
        out[label] = {
            **lateness(env),
            "manager peak RSS (MB)": round(max(rss), 1),
            "messages in the broker after": depth,
        }
    return out


def scenario_sigkill(jobs: int) -> dict[str, float]:
    env = setup("tq_bench_def3")
    wrk = worker(env)
    manager = spawn(env, "tomqueue-deferred")
    time.sleep(2)
    enqueue_spread(env, jobs, start_in=3, spread=10)
    time.sleep(1)
    manager.send_signal(signal.SIGKILL)
    manager.wait()
    time.sleep(2)
    manager = spawn(env, "tomqueue-deferred")
    wait_done(env, jobs, timeout=60)
    stop(wrk, manager)
    return {"jobs": jobs, **lateness(env)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--future-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    pg = psycopg.connect(ADMIN).execute("SHOW server_version").fetchone()
    print(
        f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; PostgreSQL "
        f"{pg[0] if pg else '?'}; one tomqueue-worker --concurrency 4; one tomqueue-deferred "
        "(horizon 60 s, poll 1 s)"
    )
    sections = {f"{args.jobs:,} jobs due within one minute": scenario_minute(args.jobs)}
    for label, figures in scenario_million(args.future_rows, 1000).items():
        sections[f"1,000 jobs due within 30 s, {label}"] = figures
    sections["SIGKILL the manager with 1,000 jobs due in 10 s, restart 2 s later"] = (
        scenario_sigkill(1000)
    )
    print_figure_sections(sections)


if __name__ == "__main__":
    main()
