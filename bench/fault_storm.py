"""Fault benchmark: SIGKILL storm, broker restart, PostgreSQL restart, lost host; jobs lost
must be 0.

Run with bin/bench-faults (``--only lost-host`` for one scenario). Prints a Markdown table;
see docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import psutil
import psycopg

from bench.report import print_figure_sections
from tests.tcp_proxy import TcpProxy
from tomqueue.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN = "postgresql://tomqueue:tomqueue@127.0.0.1:5432/tomqueue"
AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"


def fresh_database(name: str) -> str:
    """A new database ``tq_<kind>``, migrated and so bound to the prefix its run uses,
    ``environment(url, kind)``: a database's jobs belong to one prefix."""
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+psycopg://tomqueue:tomqueue@127.0.0.1:5432/{name}"
    env = environment(url, name.removeprefix("tq_"))
    subprocess.run([BIN / "tomqueue", "migrate"], env=env, check=True, capture_output=True)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE storm_runs (key int, event text, pid int, "
            "at timestamptz DEFAULT clock_timestamp())"
        )
    return url


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def environment(url: str, prefix: str) -> dict[str, str]:
    return dict(
        os.environ,
        TOMQUEUE_DATABASE_URL=url,
        TOMQUEUE_AMQP_URL=AMQP,
        TOMQUEUE_PREFIX=f"storm.{prefix}",
        PYTHONPATH=str(ROOT),
    )


def enqueue_all(env: dict[str, str], count: int, seconds: float) -> None:
    code = (
        "import tomqueue; from bench.storm_jobs import StormJob\n"
        f"for start in range(0, {count}, 500):\n"
        f"    tomqueue.enqueue_many([StormJob(k, {seconds}) for k in range(start, "
        f"min({count}, start + 500))])\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def start_system(
    env: dict[str, str], processes: int, concurrency: int
) -> list[subprocess.Popen[bytes]]:
    supervisor = subprocess.Popen(
        [
            BIN / "tomqueue-worker",
            "--app",
            "bench.storm_jobs",
            "--processes",
            str(processes),
            "--concurrency",
            str(concurrency),
            "--log-level",
            "ERROR",
        ],
        env=env,
        cwd=ROOT,
    )
    deferred = subprocess.Popen(
        [BIN / "tomqueue-deferred", "--log-level", "ERROR"], env=env, cwd=ROOT
    )
    return [supervisor, deferred]


def stop_system(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def completed(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT key) FROM storm_runs WHERE event = 'end'"
        ).fetchone()
        return int(row[0]) if row else 0


def settle(url: str, limit: float = 60.0) -> None:
    """Every job has ended; give the healing loops time to finish what is left.

    A job killed after it finished but before its row was deleted has its "end" row, and
    its row waits for the orphan grace and the sweep to run it again; "rows left" counts
    only what is still there once that had its chance (``limit`` seconds).
    """
    deadline = time.time() + limit
    time.sleep(2)
    while time.time() < deadline:
        with psycopg.connect(libpq(url)) as conn:
            row = conn.execute("SELECT count(*) FROM tomqueue_jobs").fetchone()
        if row is None or row[0] == 0:
            return
        time.sleep(0.5)


def summary(url: str, count: int) -> dict[str, float]:
    with psycopg.connect(libpq(url)) as conn:
        ends = dict(
            conn.execute(
                "SELECT key, count(*) FROM storm_runs WHERE event = 'end' GROUP BY key"
            ).fetchall()
        )
        starts = dict(
            conn.execute(
                "SELECT key, count(*) FROM storm_runs WHERE event = 'start' GROUP BY key"
            ).fetchall()
        )
        pending = conn.execute("SELECT count(*) FROM tomqueue_jobs").fetchone()[0]
        failed = conn.execute(
            "SELECT count(*) FROM tomqueue_jobs WHERE failed_at IS NOT NULL"
        ).fetchone()[0]
    return {
        "jobs": count,
        "lost": sum(1 for key in range(count) if key not in ends),
        "rows left": pending,
        "failed": failed,
        "completed twice": sum(1 for n in ends.values() if n > 1),
        "started more than once": sum(1 for n in starts.values() if n > 1),
    }


def recovery_times(url: str, kills: list[tuple[int, float]]) -> list[float]:
    """For each killed pid: its unfinished jobs, and how long until each started again."""
    delays: list[float] = []
    with psycopg.connect(libpq(url)) as conn:
        for pid, killed_at in kills:
            rows = conn.execute(
                """SELECT s.key, (SELECT min(extract(epoch FROM r.at)) FROM storm_runs r
                                  WHERE r.key = s.key AND r.event = 'start'
                                    AND extract(epoch FROM r.at) > %s)
                   FROM storm_runs s
                   WHERE s.pid = %s AND s.event = 'start' AND NOT EXISTS (
                       SELECT 1 FROM storm_runs e WHERE e.key = s.key AND e.event = 'end'
                       AND e.pid = s.pid)""",
                (killed_at, pid),
            ).fetchall()
            delays += [float(restart) - killed_at for _, restart in rows if restart is not None]
    return delays


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def storm(count: int, interval: float, seconds: float) -> dict[str, float]:
    url = fresh_database("tq_storm")
    env = environment(url, "storm")
    enqueue_all(env, count, seconds)
    procs = start_system(env, processes=4, concurrency=2)
    supervisor = psutil.Process(procs[0].pid)
    kills: list[tuple[int, float]] = []
    started = time.time()
    deadline = started + 900
    next_kill = started + interval
    while completed(url) < count and time.time() < deadline:
        if time.time() >= next_kill:
            children = supervisor.children()
            if children:
                victim = random.choice(children)
                kills.append((victim.pid, time.time()))
                victim.send_signal(signal.SIGKILL)
            next_kill += interval
        time.sleep(0.05)
    elapsed = time.time() - started
    settle(url)
    stop_system(procs)
    result = summary(url, count)
    delays = sorted(recovery_times(url, kills))
    result.update(
        {
            "workers killed": len(kills),
            "orphaned jobs": len(delays),
            "recovery p50 (s)": round(statistics.median(delays), 2) if delays else 0.0,
            "recovery p99 (s)": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 2)
            if delays
            else 0.0,
            "recovery max (s)": round(delays[-1], 2) if delays else 0.0,
            "wall time (s)": round(elapsed, 1),
        }
    )
    return result


def restart_run(kind: str, count: int, seconds: float) -> dict[str, float]:
    url = fresh_database(f"tq_{kind}")
    env = environment(url, kind)
    enqueue_all(env, count, seconds)
    procs = start_system(env, processes=2, concurrency=4)
    started = time.time()
    while completed(url) < count // 3:
        time.sleep(0.05)
    before_rate = completed(url) / (time.time() - started)
    script = "rabbitmq-restart" if kind == "broker" else "postgres-restart"
    outage_at = time.time()
    subprocess.run([ROOT / "bin" / script], check=True)
    back_at = time.time()
    # full throughput again: the first second-long window, after the server is back, in
    # which at least 80 % of the pre-outage rate is reached
    recovered_at = None
    last, last_t = completed_safe(url), time.time()
    while completed_safe(url) < count and time.time() < back_at + 300:
        time.sleep(1)
        now_done, now_t = completed_safe(url), time.time()
        if recovered_at is None and (now_done - last) / (now_t - last_t) >= 0.8 * before_rate:
            recovered_at = now_t
        last, last_t = now_done, now_t
    settle(url)
    stop_system(procs)
    result = summary(url, count)
    result.update(
        {
            "outage (s)": round(back_at - outage_at, 1),
            "full throughput again after server back (s)": (
                round(recovered_at - back_at, 1) if recovered_at else float("nan")
            ),
            "rate before (jobs/s)": round(before_rate),
        }
    )
    return result


def lost_host(count: int, seconds: float, lease_timeout: float | None) -> dict[str, object]:
    """One worker's database traffic goes through a proxy that stops forwarding a third of
    the way through (a partition: sockets stay open, nothing moves, TCP notices nothing);
    its jobs must be started again by the other workers once its lease is gone."""
    url = fresh_database("tq_lost_host")
    env = environment(url, "lost_host")
    if lease_timeout is not None:
        env["TOMQUEUE_LEASE_TIMEOUT"] = str(lease_timeout)
    enqueue_all(env, count, seconds)
    procs = start_system(env, processes=2, concurrency=2)
    log_path = Path(tempfile.gettempdir()) / "tomqueue-lost-host-worker.log"
    with TcpProxy() as proxy, log_path.open("wb") as log_file:
        cut_off = subprocess.Popen(
            [
                BIN / "tomqueue-worker",
                "--app",
                "bench.storm_jobs",
                "--concurrency",
                "2",
                "--log-level",
                "WARNING",
            ],
            env=env | {"TOMQUEUE_DATABASE_URL": proxy.url_for(url)},
            cwd=ROOT,
            stderr=log_file,
        )
        started = time.time()
        # freeze a third of the way through, at a moment the cut-off worker holds a job
        while completed(url) < count // 3 or not locked_by(url, cut_off.pid):
            if completed(url) >= count or cut_off.poll() is not None:
                stop_system([*procs, cut_off])
                raise RuntimeError(f"the cut-off worker never held a job: see {log_path}")
            time.sleep(0.01)
        frozen_at = time.time()
        proxy.freeze()
        held_at_freeze = locked_by(url, cut_off.pid)
        deadline = frozen_at + 600
        unlocked_at = None
        while time.time() < deadline:
            if unlocked_at is None and locked_by(url, cut_off.pid) == 0:
                unlocked_at = time.time()
            if completed(url) >= count:
                break
            time.sleep(0.02)
        done_at = time.time()
        time.sleep(2)
        still_waiting = cut_off.poll() is None  # waits for its lease: no crash, no exit
        stop_system(procs)
        cut_off.kill()  # the host never comes back
        cut_off.wait()
    logged = b"worker lease lost" in log_path.read_bytes()
    result: dict[str, object] = dict(summary(url, count))
    delays = sorted(recovery_times(url, [(cut_off.pid, frozen_at)]))
    result.update(
        {
            "lease timeout (s)": lease_timeout or Settings.lease_timeout.total_seconds(),
            "rows it held locked when cut off": held_at_freeze,
            "jobs it had started when cut off": len(delays),
            # the sweep found its lease gone (lease timeout + orphan grace + a sweep)
            "its jobs unlocked after (s)": round(unlocked_at - frozen_at, 2)
            if unlocked_at
            else float("nan"),
            # ... then its jobs waited behind their queue's backlog (at the back, FIFO)
            "recovery min (s)": round(delays[0], 2) if delays else float("nan"),
            "recovery max (s)": round(delays[-1], 2) if delays else float("nan"),
            "cut-off worker still waiting, not crashed": "yes" if still_waiting else "no",
            "cut-off worker logged its lost lease": "yes" if logged else "no",
            "freeze -> all jobs done (s)": round(done_at - frozen_at, 1),
            "wall time (s)": round(done_at - started, 1),
        }
    )
    return result


def locked_by(url: str, pid: int) -> int:
    """Rows locked by the worker process ``pid`` now (its name is in locked_by)."""
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tomqueue_jobs WHERE locked_by LIKE %s", (f"% pid:{pid} %",)
        ).fetchone()
        return int(row[0]) if row else 0


def completed_safe(url: str) -> int:
    for _ in range(100):
        try:
            return completed(url)
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("database did not come back")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--kill-every", type=float, default=2.0)
    parser.add_argument("--job-seconds", type=float, default=0.02)
    parser.add_argument("--skip-restarts", action="store_true")
    parser.add_argument(
        "--only",
        choices=["storm", "restarts", "lost-host"],
        help="run one scenario (default: all)",
    )
    parser.add_argument("--lost-host-jobs", type=int, default=3000)
    parser.add_argument(
        "--lease-timeout",
        type=float,
        default=None,
        help="TOMQUEUE_LEASE_TIMEOUT for the lost-host scenario (default: the setting's)",
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    wanted = {args.only} if args.only else {"storm", "restarts", "lost-host"}
    if args.skip_restarts:
        wanted.discard("restarts")
    results: dict[str, Mapping[str, object]] = {}
    if "storm" in wanted:
        results["SIGKILL storm"] = storm(args.jobs, args.kill_every, args.job_seconds)
    if "restarts" in wanted:
        results["RabbitMQ restart"] = restart_run("broker", 3000, args.job_seconds)
        results["PostgreSQL restart"] = restart_run("postgres", 3000, args.job_seconds)
    if "lost-host" in wanted:
        results["Lost host"] = lost_host(args.lost_host_jobs, args.job_seconds, args.lease_timeout)
    print_figure_sections(results)


if __name__ == "__main__":
    main()
