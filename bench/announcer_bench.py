"""How fast notifications reach a confirm: the pipelined Announcer against Publisher.publish.

    .venv/bin/python -m bench.announcer_bench [--count 10000] [--runs 3]

Each run uses a fresh prefix (its queues deleted afterwards) and publishes ``--count``
persistent notifications spread over the four priority queues:
  publisher, one at a time  ``Publisher.publish([note])`` per notification, each waiting
                            for its confirm (what ``enqueue(wait_for_broker=True)`` pays)
  announcer, to confirmed   ``Announcer.submit`` of every notification (one call each),
                            then ``flush``: notifications/s from the first submit until all
                            are confirmed; the connection is opened before the clock starts
  announcer, submit only    how fast the callers get their hands back (the submit calls)
Figures are the median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import pika

from bench.report import print_figure_sections
from tomqueue.announcer import Announcer
from tomqueue.broker import Publisher, Topology, delete_topology
from tomqueue.priority import LEVELS_IN_ORDER
from tomqueue.settings import Settings
from tomqueue.wire import Notification

AMQP = os.environ.get("TOMQUEUE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def notifications(count: int) -> list[Notification]:
    now = datetime.now(UTC)
    return [
        Notification(n, f"{n:x}", LEVELS_IN_ORDER[n % len(LEVELS_IN_ORDER)], now)
        for n in range(1, count + 1)
    ]


def fresh_settings() -> Settings:
    return Settings(amqp_url=AMQP, prefix=f"benchann.{uuid.uuid4().hex[:10]}")


def cleanup(settings: Settings) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        delete_topology(connection.channel(), Topology(settings.prefix))
    finally:
        connection.close()


def run_publisher(count: int) -> float:
    settings = fresh_settings()
    publisher = Publisher(settings)
    notes = notifications(count)
    try:
        publisher.publish(notes[:1])  # connect and declare before the clock starts
        started = time.perf_counter()
        for note in notes:
            publisher.publish([note])
        return count / (time.perf_counter() - started)
    finally:
        publisher.close()
        cleanup(settings)


def run_announcer(count: int) -> tuple[float, float, int]:
    settings = fresh_settings()
    given_up: list[Notification] = []
    announcer = Announcer(settings, given_up.extend)
    notes = notifications(count)
    try:
        announcer.submit(notes[:1])  # the thread connects and declares before the clock
        if not announcer.flush(30):
            raise SystemExit("announcer could not warm up: is RabbitMQ running?")
        started = time.perf_counter()
        for note in notes:
            announcer.submit([note])
        submitted = time.perf_counter()
        confirmed = announcer.flush(120)
        finished = time.perf_counter()
        if not confirmed:
            raise SystemExit(f"flush failed: {len(given_up)} given up")
        return count / (finished - started), count / (submitted - started), announcer.batches
    finally:
        announcer.close(5)
        cleanup(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    publisher, confirmed, submit, batches = [], [], [], 0
    for _ in range(args.runs):
        publisher.append(run_publisher(args.count))
        to_confirmed, to_submitted, sent = run_announcer(args.count)
        confirmed.append(to_confirmed)
        submit.append(to_submitted)
        batches += sent
    median = statistics.median
    print_figure_sections(
        {
            f"{args.count:,} notifications, median of {args.runs} runs (per second)": {
                "publisher, one at a time": f"{median(publisher):,.0f}",
                "announcer, to confirmed": f"{median(confirmed):,.0f}",
                "announcer, submit only": f"{median(submit):,.0f}",
                "speed-up to confirmed": f"{median(confirmed) / median(publisher):.1f}x",
                "broker round trips per run (mean)": f"{batches / args.runs:,.0f}",
                "load average at the end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            }
        }
    )


if __name__ == "__main__":
    main()
