"""bin/bench: tomqueue and its peers on the same servers, machine and run, same job body.

Figures per system (each the median of --runs runs):
  enqueue single   jobs/s, one enqueue call per job (workers stopped)
  enqueue batched  jobs/s, batches of 500 through each system's batch API
  drain            jobs/s for --jobs ready jobs with 2 worker processes: jobs divided by the
                   time from the first job's start to the last one's (steady state, so a
                   system's start-up time does not count)
  latency p50/p99  ms from just before the enqueue call to the job body's start, one job
                   every 20 ms on an otherwise idle system
  drain, 1M future rows   the drain figure again with 1,000,000 jobs scheduled a day ahead
                   in the system's table (database-backed systems only)
  worker RSS       MB, peak summed resident memory of the worker processes while draining
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pika
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PY = sys.executable
PEERS_VENV = ROOT / ".bench" / "peers-venv"
PEERS_PY = str(PEERS_VENV / "bin" / "python")
PEER_REQUIREMENTS = [
    "celery>=5,<6",
    "dramatiq[rabbitmq]>=2,<3",
    "procrastinate>=3,<4",
    "psycopg[binary]>=3.1",
]
ADMIN_DSN = "postgresql://tomqueue:tomqueue@127.0.0.1:5432/tomqueue"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
SYSTEMS = ["tomqueue", "celery", "dramatiq", "procrastinate"]
TOMQUEUE_CONCURRENCY = 4
PEER_THREADS = 4


def dsn(db: str) -> str:
    return f"postgresql://tomqueue:tomqueue@127.0.0.1:5432/{db}"


@dataclass
class System:
    name: str
    db: str
    python: str
    figures: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            BENCH_RESULTS_DSN=dsn(self.db),
            BENCH_AMQP_URL=AMQP_URL,
            BENCH_PROCRASTINATE_DSN=dsn(self.db),
            TOMQUEUE_DATABASE_URL=dsn(self.db).replace("postgresql://", "postgresql+psycopg://"),
            TOMQUEUE_AMQP_URL=AMQP_URL,
            TOMQUEUE_PREFIX="bench",
        )

    def add(self, figure: str, value: float) -> None:
        self.figures.setdefault(figure, []).append(value)


# -- set-up ------------------------------------------------------------------------------


def ensure_peers_venv() -> None:
    if not (PEERS_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run(
        [PEERS_PY, "-m", "pip", "install", "-q", *PEER_REQUIREMENTS, "psutil"], check=True
    )


def version(python: str, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version('{package}'))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def reset(system: System) -> None:
    """A fresh database with the results table (and the system's schema), empty queues."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {system.db} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {system.db}")
    with psycopg.connect(dsn(system.db), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_results (key int, sent double precision, started double precision)"
        )
    env = system.env()
    if system.name == "tomqueue":
        subprocess.run(
            [str(Path(PROJECT_PY).parent / "tomqueue"), "migrate"],
            env=env,
            check=True,
            capture_output=True,
        )
    if system.name == "procrastinate":
        subprocess.run(
            [
                PEERS_PY,
                "-m",
                "procrastinate",
                "--app",
                "bench.peers.procrastinate_app.app",
                "schema",
                "--apply",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in [
        "bench-celery",
        "bench-dramatiq",
        "bench-dramatiq.DQ",
        "bench-dramatiq.XQ",
        "bench.balance.high",
        "bench.balance.normal",
        "bench.balance.low",
        "bench.balance.bulk",
        "bench.deferred",
    ]:
        channel.queue_delete(queue)
    connection.close()


def worker_commands(system: System) -> list[list[str]]:
    bin_dir = Path(PROJECT_PY).parent
    if system.name == "tomqueue":
        return [
            [
                str(bin_dir / "tomqueue-worker"),
                "--app",
                "bench.jobs_tomqueue",
                "--processes",
                "2",
                "--concurrency",
                str(TOMQUEUE_CONCURRENCY),
                "--log-level",
                "WARNING",
            ],
            [str(bin_dir / "tomqueue-deferred"), "--log-level", "WARNING"],
        ]
    if system.name == "celery":
        return [
            [
                PEERS_PY,
                "-m",
                "celery",
                "-A",
                "bench.peers.celery_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--queues",
                "bench-celery",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        ]
    if system.name == "dramatiq":
        return [
            [
                PEERS_PY,
                "-m",
                "dramatiq",
                "bench.peers.dramatiq_app",
                "--processes",
                "2",
                "--threads",
                str(PEER_THREADS),
            ]
        ]
    return [
        [
            PEERS_PY,
            "-m",
            "procrastinate",
            "--app",
            "bench.peers.procrastinate_app.app",
            "worker",
            "--concurrency",
            str(PEER_THREADS),
            "--queues",
            "bench",
            "--delete-jobs",
            "successful",
        ]
        for _ in range(2)
    ]


class Workers:
    def __init__(self, system: System) -> None:
        self.procs = [
            subprocess.Popen(
                cmd,
                env=system.env(),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for cmd in worker_commands(system)
        ]
        self.peak_rss = 0.0

    def rss_mb(self) -> float:
        total = 0
        for proc in self.procs:
            try:
                parent = psutil.Process(proc.pid)
                for p in [parent, *parent.children(recursive=True)]:
                    cmd = " ".join(p.cmdline())
                    if "tomqueue-deferred" not in cmd:
                        total += p.memory_info().rss
            except psutil.Error:
                pass
        self.peak_rss = max(self.peak_rss, total / 2**20)
        return total / 2**20

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait()


def drive(system: System, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [system.python, "-m", "bench.driver", system.name, *args],
        env=system.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{system.name} driver failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def results(system: System, query: str) -> list[tuple[float, ...]]:
    with psycopg.connect(dsn(system.db)) as conn:
        return conn.execute(query).fetchall()


def count_done(system: System) -> int:
    return int(results(system, "SELECT count(*) FROM bench_results WHERE key >= 0")[0][0])


def wait_for(
    system: System,
    target: int,
    workers: Workers | None,
    timeout: float = 600,
    give_up_quietly: bool = False,
) -> None:
    deadline = time.monotonic() + timeout
    while count_done(system) < target:
        if time.monotonic() > deadline:
            if give_up_quietly:
                return
            raise RuntimeError(f"{system.name}: only {count_done(system)} of {target} ran")
        if workers is not None:
            workers.rss_mb()
        time.sleep(0.2)


def clear_results(system: System) -> None:
    with psycopg.connect(dsn(system.db), autocommit=True) as conn:
        conn.execute("TRUNCATE bench_results")


# -- the measurements ----------------------------------------------------------------------


def measure_drain(system: System, jobs: int, label: str, cap: float | None = None) -> None:
    """Drain ``jobs`` ready jobs. With ``cap``, a system still draining after ``cap`` seconds
    is stopped and measured on the jobs it ran by then (and the shortfall is reported)."""
    clear_results(system)
    system.add(f"enqueue batched (jobs/s){label}", drive(system, "batch", str(jobs))["rate"])
    workers = Workers(system)
    try:
        if cap is None:
            wait_for(system, jobs, workers)
        else:
            wait_for(system, jobs, workers, timeout=cap, give_up_quietly=True)
    finally:
        workers.stop()
    done = count_done(system)
    if done < jobs:
        system.errors.append(
            f"drain{label}: only {done} of {jobs} jobs ran within {cap:g}s; the rate is over those"
        )
    first, last = results(
        system, "SELECT min(started), max(started) FROM bench_results WHERE key >= 0"
    )[0]
    system.add(f"drain (jobs/s){label}", done / max(last - first, 1e-6))
    if not label:
        system.add("worker RSS (MB)", workers.peak_rss)


def measure_enqueue_and_latency(system: System, singles: int, samples: int) -> None:
    clear_results(system)
    system.add("enqueue single (jobs/s)", drive(system, "single", str(singles))["rate"])
    if system.name == "tomqueue":  # the floor: a bare INSERT+commit of the same row shape
        system.add("raw INSERT+commit (rows/s)", drive(system, "raw", str(singles))["rate"])
    workers = Workers(system)
    try:
        wait_for(system, singles, workers)
        time.sleep(1.0)
        clear_results(system)
        drive(system, "latency", str(samples), "20")
        wait_for(system, samples, None)
    finally:
        workers.stop()
    lat = sorted(
        (started - sent) * 1000
        for sent, started in results(
            system, "SELECT sent, started FROM bench_results WHERE key >= 0"
        )
    )
    system.add("latency p50 (ms)", statistics.median(lat))
    system.add("latency p99 (ms)", lat[min(len(lat) - 1, int(len(lat) * 0.99))])


def add_million_future_rows(system: System, rows: int) -> None:
    with psycopg.connect(dsn(system.db), autocommit=True) as conn:
        if system.name == "tomqueue":
            conn.execute(
                """INSERT INTO tomqueue_jobs (handler, run_at, priority, created_at, updated_at)
                SELECT '{"class":"bench.jobs_tomqueue.InsertResult","state":{"key":-2,'
                       || '"sent":0},"v":1}', now() + interval '1 day', 0, now(), now()
                FROM generate_series(1, %s)""",
                (rows,),
            )
        else:
            conn.execute(
                """INSERT INTO procrastinate_jobs (queue_name, task_name, args, status,
                                                   scheduled_at)
                SELECT 'bench', 'insert_result', '{"key": -2, "sent": 0}', 'todo',
                       now() + interval '1 day'
                FROM generate_series(1, %s)""",
                (rows,),
            )
        conn.execute("ANALYZE")


def run_system(system: System, args: argparse.Namespace) -> None:
    for run in range(args.runs):
        reset(system)
        print(f"  {system.name}: run {run + 1}/{args.runs}", flush=True)
        measure_enqueue_and_latency(system, args.singles, args.samples)
        measure_drain(system, args.jobs, "")
        if not args.skip_million and system.name in ("tomqueue", "procrastinate"):
            add_million_future_rows(system, args.future_rows)
            measure_drain(system, args.jobs, ", 1M future rows", cap=args.million_cap)


# -- report --------------------------------------------------------------------------------

FIGURES = [
    ("enqueue single (jobs/s)", True),
    ("raw INSERT+commit (rows/s)", True),
    ("enqueue batched (jobs/s)", True),
    ("drain (jobs/s)", True),
    ("drain (jobs/s), 1M future rows", True),
    ("latency p50 (ms)", False),
    ("latency p99 (ms)", False),
    ("worker RSS (MB)", False),
]


FLOOR = "raw INSERT+commit (rows/s)"


def report(systems: list[System], args: argparse.Namespace) -> str:
    peers = [s for s in systems if s.name != "tomqueue"]
    ours = next((s for s in systems if s.name == "tomqueue"), None)
    columns = ["figure", *(s.name for s in systems)]
    if ours:
        columns += [f"tomqueue/{p.name}" for p in peers]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]

    def median(system: System, figure: str) -> float | None:
        values = system.figures.get(figure)
        return statistics.median(values) if values else None

    for figure, _higher_is_better in FIGURES:
        cells = []
        for system in systems:
            value = median(system, figure)
            cells.append("n/a" if value is None else f"{value:,.1f}")
        if ours:
            mine = median(ours, figure)
            for peer in peers:
                theirs = median(peer, figure)
                cells.append("n/a" if mine is None or not theirs else f"{mine / theirs:.2f}x")
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    if ours:
        single, raw = median(ours, "enqueue single (jobs/s)"), median(ours, FLOOR)
        if single and raw:
            lines.append(f"\ntomqueue single enqueue / raw INSERT+commit: {single / raw:.2f}x")
    failed = [f"- {s.name}: {error}" for s in systems for error in s.errors]
    return "\n".join(lines + failed)


def machine() -> str:
    pg = psycopg.connect(ADMIN_DSN).execute("SHOW server_version").fetchone()
    rabbit = subprocess.run(["rabbitmqctl", "version"], capture_output=True, text=True).stdout
    return (
        f"{platform.node()}: {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"PostgreSQL {pg[0] if pg else '?'}, RabbitMQ {rabbit.strip() or '?'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--future-rows", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(SYSTEMS))
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument(
        "--million-cap",
        type=float,
        default=120,
        help="seconds the drain with 1M future rows may take",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and once")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.jobs, args.singles, args.samples = 1, 500, 100, 30
        args.future_rows = 10_000
    names = [n for n in args.only.split(",") if n]
    if any(n != "tomqueue" for n in names):
        ensure_peers_venv()
    systems = [System(n, f"bench_{n}", PROJECT_PY if n == "tomqueue" else PEERS_PY) for n in names]
    print(machine())
    versions = {
        s.name: version(s.python, "tomqueue" if s.name == "tomqueue" else s.name) for s in systems
    }
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"settings: {args.jobs} jobs, median of {args.runs} run(s); tomqueue --processes 2 "
        f"--concurrency {TOMQUEUE_CONCURRENCY} + tomqueue-deferred; celery prefork -c 2, acks "
        f"late, persistent; dramatiq --processes 2 --threads {PEER_THREADS}, confirms; "
        f"procrastinate 2 workers --concurrency {PEER_THREADS}, delete on success"
    )
    for system in systems:
        try:
            run_system(system, args)
        except Exception as exc:  # one peer failing must not sink the whole benchmark
            print(f"  {system.name} failed: {exc}", flush=True)
            system.errors.append(str(exc)[:300])
    table = report(systems, args)
    print(table)
    out = ROOT / ".bench" / "last-results.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"{machine()}\n\n{table}\n")


if __name__ == "__main__":
    main()
