"""``python manage.py tomqueue_worker``: run Django tasks (tomqueue.contrib.django.worker)."""

from __future__ import annotations

from argparse import SUPPRESS
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tomqueue.contrib.django.management.arguments import add_metrics_arguments


class Command(BaseCommand):
    help = (
        "Run the tasks of a tomqueue task backend until SIGTERM or SIGINT, then finish the "
        "tasks in hand and exit 0."
    )
    requires_system_checks: ClassVar[list[str]] = []  # a worker must start even with a warning

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default="default", help="TASKS alias (default).")
        parser.add_argument(
            "--concurrency", "-c", type=_at_least_one, default=1, help="Tasks run at once."
        )
        parser.add_argument(
            "--queues",
            "-q",
            default=None,
            metavar="NAMES",
            help="Serve only these queues, comma-separated ('default' included); all by default.",
        )
        parser.add_argument(
            "--processes", "-p", type=_at_least_one, default=1, help="Supervised processes."
        )
        parser.add_argument(
            "--max-jobs", type=_at_least_one, default=None, help="Exit 0 after this many."
        )
        parser.add_argument("--shutdown-timeout", type=float, default=None, metavar="SECONDS")
        add_metrics_arguments(parser)
        # a supervised child records into the supervisor's metrics directory, serving none
        parser.add_argument("--metrics-multiprocess", action="store_true", help=SUPPRESS)
        parser.add_argument("--log-level", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        from tomqueue.contrib.django.worker import run_worker
        from tomqueue.errors import ConfigurationError

        try:
            code = run_worker(
                alias=options["backend"],
                concurrency=options["concurrency"],
                queues=options["queues"],
                processes=options["processes"],
                max_jobs=options["max_jobs"],
                shutdown_timeout=options["shutdown_timeout"],
                log_level=options["log_level"],
                metrics_port=options["metrics_port"],
                metrics_host=options["metrics_host"],
                metrics_multiprocess=options["metrics_multiprocess"],
            )
        except (LookupError, ConfigurationError) as exc:
            raise CommandError(str(exc)) from exc
        raise SystemExit(code)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value
