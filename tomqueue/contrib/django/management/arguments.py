"""Arguments the tomqueue management commands share with tomqueue-worker/-deferred."""

from __future__ import annotations

from argparse import ArgumentTypeError

from django.core.management.base import CommandParser

from tomqueue.metrics import DEFAULT_METRICS_HOST


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


def add_metrics_arguments(parser: CommandParser) -> None:
    """``--metrics-port`` and ``--metrics-host``, as on tomqueue-worker."""
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        default=None,
        metavar="PORT",
        help="Serve Prometheus metrics at http://HOST:PORT/metrics.",
    )
    parser.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        help=f"Address the metrics endpoint listens on ({DEFAULT_METRICS_HOST}).",
    )
