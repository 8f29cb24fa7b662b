"""Logging set-up for the command-line processes (the library itself installs no handlers)."""

from __future__ import annotations

import logging
import sys


def configure_process_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s",
    )
    # pika logs every failed reconnect attempt as an ERROR with a traceback; tomqueue logs
    # one clear line per outage itself, so pika speaks only when debugging
    quiet = logging.DEBUG if level.upper() == "DEBUG" else logging.CRITICAL
    logging.getLogger("pika").setLevel(quiet)
