"""``python manage.py tomqueue_deferred``: release tasks whose run_after has come."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tomqueue.contrib.django.management.arguments import add_metrics_arguments


class Command(BaseCommand):
    help = "Release tomqueue tasks whose run_after has come; run several for fail-over."
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default="default", help="TASKS alias (default).")
        parser.add_argument("--horizon", type=float, default=None, help="Seconds held ahead.")
        add_metrics_arguments(parser)
        parser.add_argument("--log-level", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        from tomqueue.contrib.django.worker import run_deferred
        from tomqueue.errors import ConfigurationError

        try:
            code = run_deferred(
                options["backend"],
                options["horizon"],
                options["log_level"],
                metrics_port=options["metrics_port"],
                metrics_host=options["metrics_host"],
            )
        except (LookupError, ConfigurationError) as exc:
            raise CommandError(str(exc)) from exc
        raise SystemExit(code)
