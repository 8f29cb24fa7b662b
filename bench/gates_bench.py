"""What concurrency limits and serial keys cost a drain.

    .venv/bin/python -m bench.gates_bench [--jobs 3000] [--concurrency 4] [--runs 3]

Three variants, each on a fresh database, alternating run by run:
- ``no limit``: no-op jobs, as the drain benchmark's;
- ``limit, not binding``: the same jobs with ``concurrency_limit = 1000`` (each job takes
  and frees an advisory-lock slot and looks for parked jobs, but never waits);
- ``one serial key``: every job shares one ``serial_key()``: one runs at a time, in order;
  the rest park and are woken one by one as each finishes.

Figure: jobs/s from the worker's start to the last row's delete, the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import statistics
from typing import ClassVar

import tomqueue
from bench.fresh_drain import timed_drain
from tomqueue.app import App


class Plain(tomqueue.Job):
    def perform(self) -> None:
        pass


class Capped(tomqueue.Job):
    concurrency_limit: ClassVar[int | None] = 1000

    def perform(self) -> None:
        pass


class InLine(tomqueue.Job):
    def serial_key(self) -> str | None:
        return "the-one-key"

    def perform(self) -> None:
        pass


VARIANTS: dict[str, type[tomqueue.Job]] = {
    "no limit": Plain,
    "limit, not binding": Capped,
    "one serial key": InLine,
}


def drain(job_class: type[tomqueue.Job], jobs: int, concurrency: int) -> float:
    def enqueue(app: App) -> int:
        app.enqueue_many([job_class() for _ in range(jobs)], wait_for_broker=True)
        return jobs

    return timed_drain(enqueue, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--serial-jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.runs):
        for variant, job_class in VARIANTS.items():
            jobs = args.serial_jobs if job_class is InLine else args.jobs
            results[variant].append(drain(job_class, jobs, args.concurrency))
    base = statistics.median(results["no limit"])
    for variant, figures in results.items():
        median = statistics.median(figures)
        runs = ", ".join(f"{f:.0f}" for f in figures)
        print(f"{variant:>20}: {median:7.0f} jobs/s (runs: {runs}; {median / base:.2f}x)")


if __name__ == "__main__":
    main()
