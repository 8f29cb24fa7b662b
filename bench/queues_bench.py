"""What named queues cost a drain: the same no-op jobs in the default queue, and spread over
four named queues that one worker serves (eight RabbitMQ consumers per level instead of one,
and FairHand's turns between them).

    .venv/bin/python -m bench.queues_bench [--jobs 3000] [--concurrency 4] [--runs 3]

Each variant gets a fresh database (migrated) and prefix; the jobs are enqueued and
announced first, then one in-process worker drains them. Figure: jobs/s from the worker's
start to the last row's delete, the median of ``--runs`` runs (the variants alternate).
"""

from __future__ import annotations

import argparse
import statistics

import tomqueue
from bench.fresh_drain import timed_drain
from tomqueue.app import App

NAMED = ["billing", "email", "reports", "sync"]


class Noop(tomqueue.Job):
    def perform(self) -> None:
        pass


def drain(named: bool, jobs: int, concurrency: int) -> float:
    def enqueue(app: App) -> int:
        batch = [Noop() for _ in range(jobs)]
        if named:
            for i, queue in enumerate(NAMED):
                app.enqueue_many(batch[i :: len(NAMED)], queue=queue, wait_for_broker=True)
        else:
            app.enqueue_many(batch, wait_for_broker=True)
        return jobs

    queues = ",".join(NAMED) if named else "default"
    return timed_drain(enqueue, concurrency, queues, NAMED if named else ())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"default queue": [], "4 named queues": []}
    for _ in range(args.runs):
        results["default queue"].append(drain(False, args.jobs, args.concurrency))
        results["4 named queues"].append(drain(True, args.jobs, args.concurrency))
    base = statistics.median(results["default queue"])
    for variant, figures in results.items():
        median = statistics.median(figures)
        runs = ", ".join(f"{f:.0f}" for f in figures)
        print(f"{variant:>16}: {median:7.0f} jobs/s (runs: {runs}; {median / base:.2f}x)")


if __name__ == "__main__":
    main()
