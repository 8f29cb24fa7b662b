"""Logging set-up for the command-line processes (the library itself installs no handlers).

``TOMQUEUE_LOG_FORMAT=text`` (the default) writes the classic one-line format;
``TOMQUEUE_LOG_FORMAT=json`` writes one JSON object per line, with the job's id, class,
attempt, worker, queue, outcome and duration where the line is about a job (the
``extra`` the worker logs with). Either way a URL with credentials in a JSON line's
message or traceback has them masked (tomqueue.settings.mask_url).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from tomqueue.settings import log_format_from_env, mask_url

TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"

# the structured fields a job's log lines carry (WorkContext.log_extra, ObserveOutcome)
JOB_FIELDS = ("job_id", "job_class", "attempt", "worker", "queue", "outcome", "duration")

# a URL with a user part: anything from a scheme to the next blank or quote, if it holds '@'
_URL_WITH_USER = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*@[^\s'\"<>]*")


def scrub(text: str) -> str:
    """``text`` with every URL that has a user part masked (passwords become ``***``)."""
    return _URL_WITH_USER.sub(lambda match: mask_url(match.group(0)), text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in it are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "thread": record.threadName,
            "message": scrub(record.getMessage()),
        }
        for name in JOB_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exc"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            document["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(document, default=str)


def configure_process_logging(level: str = "INFO", log_format: str | None = None) -> None:
    """Install the process's one stderr handler, in ``log_format`` (default: the
    ``TOMQUEUE_LOG_FORMAT`` environment variable, else text)."""
    chosen = log_format_from_env() if log_format is None else log_format
    handler = logging.StreamHandler(sys.stderr)
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)  # warnings become JSON lines too, not stray text
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    # pika logs every failed reconnect attempt as an ERROR with a traceback; tomqueue logs
    # one clear line per outage itself, so pika speaks only when debugging
    quiet = logging.DEBUG if level.upper() == "DEBUG" else logging.CRITICAL
    logging.getLogger("pika").setLevel(quiet)
