"""``python manage.py tomqueue ARGS``: tomqueue's operator CLI (``migrate``, ``jobs``,
``retry``, ``stats``, ``dashboard``, ...) on the backend's settings."""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "tomqueue's own command line (migrate, jobs, show, retry, delete, stats, dashboard, "
        "...) on the database and broker of a tomqueue task backend: "
        "`manage.py tomqueue migrate`, `manage.py tomqueue jobs --failed`."
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default="default", help="TASKS alias (default).")
        parser.add_argument("tomqueue_args", nargs=argparse.REMAINDER, metavar="ARGS")

    def handle(self, *args: Any, **options: Any) -> None:
        from tomqueue.cli import main
        from tomqueue.contrib.django.worker import configure_from_django
        from tomqueue.errors import ConfigurationError

        try:
            configure_from_django(options["backend"])
        except (LookupError, ConfigurationError) as exc:
            raise CommandError(str(exc)) from exc
        main.main(
            args=list(options["tomqueue_args"]) or ["--help"],
            prog_name="manage.py tomqueue",
        )
