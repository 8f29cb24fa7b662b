"""Settings: one frozen dataclass, read from the environment in one place.

Precedence is defaults < ``TOMQUEUE_*`` environment variables < ``configure()`` or CLI flags.
Every value is checked when the dataclass is built, whichever way it came in, so a bad
setting stops a process at start with a message naming it, never hours later in a loop.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from tomqueue.errors import ConfigurationError
from tomqueue.priority import PriorityLevel
from tomqueue.queues import QueueSelection

DEFAULT_DATABASE_URL = "postgresql+psycopg://tomqueue@127.0.0.1:5432/tomqueue"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

# the only SQLAlchemy driver tomqueue works with: the store uses psycopg 3's own cursors
PSYCOPG_DRIVER = "postgresql+psycopg"
# driver-less spellings that mean PostgreSQL; SQLAlchemy would pick psycopg2 for them
_BARE_POSTGRES = frozenset({"postgresql", "postgres"})

_DAY = 86400.0
# Allowed seconds for each duration, as (lowest, highest); a lowest of 0 means "more than
# 0". Nothing needs more than a day: a bigger figure is a unit mistake (milliseconds given
# as seconds), and waits that long overflow threading's timeouts. A lease must outlast a
# few of its holder's checks (every 0.5 s), so a busy but healthy worker keeps it.
_DURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "deferred_horizon": (0, _DAY),
    "deferred_poll_interval": (0, _DAY),
    "republish_after": (0, _DAY),
    "sweep_interval": (0, _DAY),
    "orphan_grace": (0, _DAY),
    "publish_timeout": (0, _DAY),
    "early_ack_after": (0, _DAY),
    "lease_timeout": (2, 3600),
    "timeout_grace": (0, _DAY),
    # how long a finished job's status stays readable: a year at most
    "status_ttl": (0, 366 * _DAY),
    "status_throttle": (0, _DAY),
}


@dataclass(frozen=True)
class Settings:
    """Everything tomqueue can be told; durations are timedeltas."""

    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = DEFAULT_AMQP_URL
    prefix: str = "tomqueue"
    priority_map: Mapping[int, PriorityLevel] = field(default_factory=dict)
    # Deferred manager: how far ahead it holds jobs in memory, and how often it looks.
    deferred_horizon: timedelta = timedelta(seconds=60)
    deferred_poll_interval: timedelta = timedelta(seconds=1)
    # Self-healing: a due, unlocked job whose notification is older than this is republished.
    republish_after: timedelta = timedelta(seconds=30)
    sweep_interval: timedelta = timedelta(seconds=2)
    # A locked job's worker lease must stay gone this long before the job is re-run, so a
    # worker whose lease connection merely dropped can take it again first.
    orphan_grace: timedelta = timedelta(seconds=4)
    # A job whose worker died this many times in a row is failed as poison.
    max_crashes: int = 5
    # Quorum queues for clustered brokers; classic durable queues otherwise.
    quorum_queues: bool = False
    # How long enqueue waits for a broker before giving up and leaving the job to the sweep.
    publish_timeout: timedelta = timedelta(seconds=5)
    # Whether enqueue waits for RabbitMQ's confirm before returning (True), or returns once
    # the row is committed while a background thread announces it in batches (False). The
    # row is the truth either way: an announcement that fails is healed by the sweep.
    wait_for_broker: bool = False
    # A job still running after this long has its message acked early, so that RabbitMQ's
    # consumer_timeout (30 min by default) never closes the channel under a long job; from
    # then on the row's lease, not the message, brings the job back if the worker dies.
    early_ack_after: timedelta = timedelta(seconds=60)
    # A worker or deferred leader whose host vanishes (power loss, partition) loses its
    # PostgreSQL lease within this bound: the server ends a lease session that stays
    # silent this long, and the holder steps down when its own check does not come back.
    lease_timeout: timedelta = timedelta(seconds=15)
    # After a job overruns max_run_time, how long its thread has to end (JobTimeout is
    # raised in it) before the worker process exits so that its lease dies with it.
    timeout_grace: timedelta = timedelta(seconds=10)
    # How long a finished job's status (``tomqueue.status``) stays readable, unless its
    # class sets ``status_ttl``; and how often a running job's progress.increment() and
    # decrement() may write (assignments and status.update write at once).
    status_ttl: timedelta = timedelta(seconds=86400)
    status_throttle: timedelta = timedelta(seconds=1)
    # The named queues a worker takes jobs from (``tomqueue-worker --queues``); every
    # queue by default. Given as a QueueSelection, or as text/names ("billing,default").
    queues: QueueSelection = field(default_factory=QueueSelection.every)
    # Called as fn(exc, job_id=..., job_class=..., attempts=...) when a job fails for good,
    # and after every failed attempt too with report_every_attempt (tomqueue.exception_
    # reports). A callable, or "package.module:function" text (TOMQUEUE_EXCEPTION_REPORTER),
    # imported by the process that reports, from its own configuration only.
    exception_reporter: Callable[..., object] | str | None = None
    report_every_attempt: bool = False

    def __post_init__(self) -> None:
        # frozen: the normalised values are written with object.__setattr__, once, here
        object.__setattr__(self, "database_url", psycopg_database_url(self.database_url))
        _check_amqp_url(self.amqp_url)
        if not self.prefix or any(ch.isspace() for ch in self.prefix):
            raise ConfigurationError(f"prefix must be a non-empty word, got {self.prefix!r}")
        for key, level in self.priority_map.items():
            if not isinstance(key, int) or not isinstance(level, PriorityLevel):
                raise ConfigurationError(
                    "priority_map maps int priorities to tomqueue.HIGH_PRIORITY, NORMAL_PRIORITY,"
                    f" LOW_PRIORITY or BULK_PRIORITY; got {key!r}: {level!r}"
                )
        for name, bounds in _DURATION_BOUNDS.items():
            object.__setattr__(self, name, _duration(name, getattr(self, name), bounds))
        object.__setattr__(self, "queues", _queue_selection(self.queues))
        from tomqueue.exception_reports import check_reporter_spec  # here: no import cycle

        check_reporter_spec(self.exception_reporter)
        crashes = self.max_crashes
        if isinstance(crashes, bool) or not isinstance(crashes, int) or crashes < 1:
            raise ConfigurationError(
                f"max_crashes must be a whole number at least 1, got {crashes!r}"
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; unknown names are refused with the valid list."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        return dataclasses.replace(self, **changes)


def _queue_selection(value: object) -> QueueSelection:
    """``queues`` as a QueueSelection, from one, from "a,b" text, or from a list of names."""
    try:
        if isinstance(value, QueueSelection):
            return value
        if value is None or isinstance(value, str):
            return QueueSelection.parse(value)
        if isinstance(value, list | tuple | set | frozenset):
            return QueueSelection.of(value)
    except ValueError as exc:
        raise ConfigurationError(f"queues: {exc}") from exc
    raise ConfigurationError(
        f'queues must be queue names ("billing,default" or a list), got {value!r}'
    )


_ENV_NAMES = {
    "TOMQUEUE_DATABASE_URL": "database_url",
    "TOMQUEUE_AMQP_URL": "amqp_url",
    "TOMQUEUE_PREFIX": "prefix",
    "TOMQUEUE_QUEUES": "queues",
    "TOMQUEUE_EXCEPTION_REPORTER": "exception_reporter",
}


_FLAG_ENV_NAMES = {
    "TOMQUEUE_QUORUM_QUEUES": "quorum_queues",
    "TOMQUEUE_WAIT_FOR_BROKER": "wait_for_broker",
    "TOMQUEUE_REPORT_EVERY_ATTEMPT": "report_every_attempt",
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults overlaid with the ``TOMQUEUE_*`` variables; the only place env is read.

    Numbers are checked here too, so that the error names the variable the operator set.
    """
    env = os.environ if environ is None else environ
    changes: dict[str, Any] = {}
    for name, attr in _ENV_NAMES.items():
        if env.get(name):
            changes[attr] = env[name]
    for name, attr in _FLAG_ENV_NAMES.items():
        if env.get(name):
            changes[attr] = env[name].strip().lower() in {"1", "true", "yes", "on"}
    for name, attr in _DURATION_ENV_NAMES.items():
        if env.get(name):
            changes[attr] = _duration(name, env[name], _DURATION_BOUNDS[attr], True)
    if env.get("TOMQUEUE_MAX_CRASHES"):
        changes["max_crashes"] = _whole_number("TOMQUEUE_MAX_CRASHES", env["TOMQUEUE_MAX_CRASHES"])
    return Settings().replace(**changes)


LOG_FORMATS = ("text", "json")


def log_format_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``TOMQUEUE_LOG_FORMAT``: "text" (the default) or "json" (one object per line).

    Read apart from the other settings: the processes set up logging before anything
    else, so that a bad setting is itself logged in the format asked for.
    """
    env = os.environ if environ is None else environ
    value = (env.get("TOMQUEUE_LOG_FORMAT") or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise ConfigurationError(
            f"TOMQUEUE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}"
        )
    return value


_DURATION_ENV_NAMES = {
    "TOMQUEUE_DEFERRED_HORIZON": "deferred_horizon",
    "TOMQUEUE_DEFERRED_POLL_INTERVAL": "deferred_poll_interval",
    "TOMQUEUE_REPUBLISH_AFTER": "republish_after",
    "TOMQUEUE_SWEEP_INTERVAL": "sweep_interval",
    "TOMQUEUE_EARLY_ACK_AFTER": "early_ack_after",
    "TOMQUEUE_ORPHAN_GRACE": "orphan_grace",
    "TOMQUEUE_LEASE_TIMEOUT": "lease_timeout",
    "TOMQUEUE_TIMEOUT_GRACE": "timeout_grace",
    "TOMQUEUE_STATUS_TTL": "status_ttl",
    "TOMQUEUE_STATUS_THROTTLE": "status_throttle",
}


def _duration(
    name: str, value: object, bounds: tuple[float, float], from_environment: bool = False
) -> timedelta:
    """``value`` (a timedelta, a number of seconds, or from the environment the text of one)
    as a checked timedelta.

    NaN, infinity, zero and negative durations would turn the loops that wait on them into
    busy loops or crashes deep inside a process, so they are refused here, by name.
    """
    low, high = bounds
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        shown = f"timedelta(seconds={seconds:g})"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds, shown = float(value), repr(value)
    elif isinstance(value, str) and from_environment:
        shown = repr(value)
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
    else:
        raise ConfigurationError(
            f"{name} must be a datetime.timedelta or a number of seconds, "
            f"got {type(value).__name__}"
        )
    above_low = seconds > low if low == 0 else seconds >= low
    if not (math.isfinite(seconds) and above_low and seconds <= high) or (
        timedelta(seconds=seconds) <= timedelta(0)  # below a microsecond rounds to nothing
    ):
        lowest = "greater than 0" if low == 0 else f"at least {low:g}"
        raise ConfigurationError(
            f"{name} must be a finite number of seconds {lowest} (at most {high:g}), got {shown}"
        )
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def _whole_number(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigurationError(f"{name} must be a whole number at least 1, got {value!r}")
    return number


def psycopg_database_url(url: str) -> str:
    """``url`` with tomqueue's driver: ``postgresql://`` and ``postgres://`` become
    ``postgresql+psycopg://``; any other driver or database is refused.

    The store works on psycopg 3 connections: another driver would fail on every job
    and requeue it in a hot loop, so it is stopped here with what to write instead.
    """
    url = url.strip()
    match = _SCHEME.match(url)
    if match is None:
        raise ConfigurationError(
            "database_url (TOMQUEUE_DATABASE_URL) must be a URL such as "
            f"{PSYCOPG_DRIVER}://user:password@host:5432/dbname, got {mask_url(url)}"
        )
    driver = match.group(1).lower()
    if driver in _BARE_POSTGRES:
        url = PSYCOPG_DRIVER + url[match.end(1) :]
    elif driver != PSYCOPG_DRIVER:
        raise ConfigurationError(
            f"database_url (TOMQUEUE_DATABASE_URL) uses {driver!r}, but tomqueue needs "
            f"PostgreSQL through psycopg 3: write {PSYCOPG_DRIVER}://user:password@host:5432/"
            f"dbname (got {mask_url(url)})"
        )
    from sqlalchemy.engine import make_url  # here: importing settings loads no driver
    from sqlalchemy.exc import ArgumentError

    try:
        host = make_url(url).host or ""
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"database_url (TOMQUEUE_DATABASE_URL) is not a valid URL ({type(exc).__name__}); "
            f"check its port and percent-encoding, got {mask_url(url)}"
        ) from exc
    if "@" in host:
        raise ConfigurationError(
            "database_url (TOMQUEUE_DATABASE_URL) has an '@' after its user:password part: "
            "percent-encode '@' in the password as %40 (and '/' as %2F, '?' as %3F, '#' as "
            f"%23), got {mask_url(url)}"
        )
    return url


def _check_amqp_url(url: str) -> None:
    nodes = split_amqp_urls(url)
    # a comma before some other scheme's URL is a node list with a foreign node in it
    if not all(_is_amqp(node) and not _FOREIGN_NODE.search(node) for node in nodes):
        raise ConfigurationError(
            "amqp_url (TOMQUEUE_AMQP_URL) must be one amqp:// or amqps:// URL, or several "
            f"separated by commas (one per cluster node), got {mask_url(url)}"
        )


# -- URLs: cluster lists and masking ---------------------------------------------------------

UNPARSEABLE_URL = "<unparseable url>"
_MASK = "***"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
# a comma starts a new node only where an amqp:// or amqps:// URL follows it
_NODE_SEPARATOR = re.compile(r"\s*,\s*(?=amqps?://)", re.IGNORECASE)
_FOREIGN_NODE = re.compile(r",\s*[A-Za-z][A-Za-z0-9+.\-]*://")
_SECRET_PARAMS = frozenset({"password", "pass", "pwd"})
_SECRET_PARAM = re.compile(r"[?&;](?:password|pass|pwd)=", re.IGNORECASE)


def split_amqp_urls(url: str) -> list[str]:
    """The nodes of TOMQUEUE_AMQP_URL, which may list a cluster's nodes comma separated.

    Only a comma followed by ``amqp://`` or ``amqps://`` separates nodes, so a password
    holding a comma, percent-encoded or not, stays in one piece.
    """
    return [node.strip() for node in _NODE_SEPARATOR.split(url.strip())]


def _is_amqp(url: str) -> bool:
    return url.strip().lower().startswith(("amqp://", "amqps://"))


def mask_url(url: str) -> str:
    """The URL with every credential replaced by ``***``, fit for logs and error messages.

    Passwords (in the user part, or as a ``password``/``pass``/``pwd`` query parameter) are
    hidden even when they hold unencoded ``, / ? # @``; a URL that cannot be parsed is
    never echoed back: it becomes ``<unparseable url>``.
    """
    if _is_amqp(url):
        return ",".join(_mask_one(node, amqp=True) for node in split_amqp_urls(url))
    return _mask_one(url.strip(), amqp=False)


def _mask_one(url: str, amqp: bool) -> str:
    from sqlalchemy.exc import ArgumentError  # here: importing settings loads no driver

    match = _SCHEME.match(url)
    if match is None:
        return UNPARSEABLE_URL
    try:
        clean = _encode_userinfo(url, match.end())
        return _mask_amqp(clean) if amqp else _mask_database(clean)
    except (ArgumentError, ValueError):
        return UNPARSEABLE_URL


def _encode_userinfo(url: str, start: int) -> str:
    """The URL with its ``user:password`` part percent-encoded, so parsers agree on it.

    Parsers end the user part at the first ``/``, ``?`` or ``#`` (urllib) or at the first
    ``@`` (SQLAlchemy); a password holding those characters spills into the host or path,
    where it would be shown. Here the user part runs to the last ``@`` before any password
    query parameter: when that is ambiguous, more is hidden, never less.
    """
    rest = url[start:]
    secret_param = _SECRET_PARAM.search(rest)
    at = rest.rfind("@", 0, secret_param.start() if secret_param else len(rest))
    if at < 0:
        return url
    user, colon, password = rest[:at].partition(":")
    userinfo = quote(unquote(user), safe="")
    if colon:
        userinfo += ":" + quote(unquote(password), safe="")
    return url[:start] + userinfo + rest[at:]


def _mask_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    query = {
        key: _MASK if key.lower() in _SECRET_PARAMS else value
        for key, value in parsed.query.items()
    }
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return rendered.replace("=%2A%2A%2A", "=" + _MASK)


def _mask_amqp(url: str) -> str:
    # no fragments in AMQP URLs: a '#' is part of the query value it appears in
    parts = urlsplit(url, allow_fragments=False)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{_MASK}@{host}" if colon else f"{user}@{host}"
    # a value's unencoded '&' leaves a piece without '=': parse_qsl drops it, unseen
    query = urlencode(
        [
            (key, _MASK if key.lower() in _SECRET_PARAMS else value)
            for key, value in parse_qsl(parts.query)
        ],
        safe="*/",
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))
