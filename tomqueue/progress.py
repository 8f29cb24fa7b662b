"""RunStatus: what one run of a job reports (``self.progress``, ``self.status``), and when
it is written.

A job reports through two objects its class provides as properties (``tomqueue.Job``):
``self.progress`` (a count, and optionally a total) and ``self.status`` (a dict of
fields). Both live in one RunStatus per run, never in the job's instance attributes, so
they are never part of the job's JSON state. The worker attaches a RunStatus with a
writer before the run and detaches it after (``attach``/``detach``); anywhere else
(``tomqueue.testing.perform_now``, a plain ``job.perform()`` in a test) the first use
makes one in memory, with no writer and no database.

When a write happens: an assignment (``progress.value = k``, ``progress.total = n``,
``finish()``, ``status[key] = v``, ``status.update(...)``) writes at once;
``increment``/``decrement`` write at most once per ``throttle`` seconds (the first at
once), and what they leave unwritten is written when the run ends. A failed write is
logged and left pending for the next one: reporting progress never fails a job.
Pure: no database or broker import.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

BIGINT_RANGE = (-(2**63), 2**63 - 1)  # progress_value and progress_total are bigint
PROGRESS_KEYS = frozenset({"progress", "total"})  # status.update(total=, progress=)
RESERVED_KEYS = frozenset({"id", "state", "value"})  # to_dict()'s own keys


@dataclass(frozen=True)
class StatusReport:
    """What a run has reported so far, as written: None for a part it never touched."""

    value: int | None
    total: int | None
    fields: Mapping[str, Any] | None

    def fields_json(self) -> str | None:
        """The fields as JSON text for the jsonb column (None: leave the stored ones)."""
        if self.fields is None:
            return None
        return json.dumps(dict(self.fields), separators=(",", ":"), allow_nan=False)


StatusWriter = Callable[[StatusReport], object]
"""Writes a report for the run (the worker's: an upsert of the job's history row)."""


class RunStatus:
    """One run's progress and fields, and the throttle on writing them."""

    def __init__(
        self,
        writer: StatusWriter | None = None,
        throttle: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._throttle = throttle
        self._clock = clock
        self._lock = threading.Lock()  # the values
        self._write_lock = threading.Lock()  # one write at a time, in order
        self._value = 0
        self._total: int | None = None
        self._fields: dict[str, Any] = {}
        self._progress_touched = False
        self._fields_touched = False
        self._dirty = False
        self._last_write = -math.inf
        self.writes = 0  # how many reports were written (tests and benchmarks count them)
        self._progress: Progress | None = None
        self._status: StatusFields | None = None

    @property
    def progress(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(self)
        return self._progress

    @property
    def status(self) -> StatusFields:
        if self._status is None:
            self._status = StatusFields(self)
        return self._status

    # -- what the run reported -----------------------------------------------------------

    def report(self) -> StatusReport | None:
        """Everything reported so far, or None if the run reported nothing."""
        with self._lock:
            return self._report()

    def _report(self) -> StatusReport | None:
        if not (self._progress_touched or self._fields_touched):
            return None
        return StatusReport(
            self._value if self._progress_touched else None,
            self._total if self._progress_touched else None,
            dict(self._fields) if self._fields_touched else None,
        )

    @property
    def dirty(self) -> bool:
        """Something reported is not written yet (a throttled increment, a failed write)."""
        with self._lock:
            return self._dirty

    def flush(self) -> bool:
        """Write what is pending now, if anything; True if a write was made."""
        return self._write_if(lambda: self._dirty)

    def take_final(self) -> StatusReport | None:
        """The last report, for the run's final write (the worker's delete carries it), and
        nothing pending from now on. None if the run reported nothing."""
        with self._lock:
            self._dirty = False
            self._writer = None  # the run is over: a late report stays in memory
            return self._report()

    # -- changes, from Progress and StatusFields --------------------------------------------

    def change(self, edit: Callable[[RunStatus], None], at_once: bool) -> None:
        with self._lock:
            edit(self)
            self._dirty = True
        if at_once:
            self._write_if(lambda: self._dirty)
        else:  # throttled: skipped while another write is under way (it is pending)
            self._write_if(self._throttle_passed, wait=False)

    def _throttle_passed(self) -> bool:
        return self._dirty and self._clock() - self._last_write >= self._throttle

    def _write_if(self, due: Callable[[], bool], wait: bool = True) -> bool:
        if self._writer is None:
            return False
        if not self._write_lock.acquire(blocking=wait):
            return False
        try:
            with self._lock:
                writer = self._writer
                if writer is None or not due():
                    return False
                report = self._report()
                self._dirty = False
                self._last_write = self._clock()
            if report is None:
                return False
            try:
                writer(report)
            except Exception as exc:  # a report must never fail the job: kept for later
                with self._lock:
                    self._dirty = True
                log.warning(
                    "could not write a job's progress (%s: %s); will try again",
                    type(exc).__name__,
                    exc,
                )
                return False
            self.writes += 1
            return True
        finally:
            self._write_lock.release()


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"progress {name} must be an int, got {value!r}")
    if not BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1]:
        raise ValueError(f"progress {name} must fit a 64-bit integer, got {value}")
    return value


def _check_total(value: object) -> int | None:
    return None if value is None else _check_count("total", value)


class Progress:
    """``self.progress``: a count towards an optional total."""

    __slots__ = ("_run",)

    def __init__(self, run: RunStatus) -> None:
        self._run = run

    @property
    def value(self) -> int:
        return self._run._value

    @value.setter
    def value(self, value: int) -> None:
        checked = _check_count("value", value)
        self._run.change(lambda r: _set_value(r, checked), at_once=True)

    @property
    def total(self) -> int | None:
        return self._run._total

    @total.setter
    def total(self, total: int | None) -> None:
        checked = _check_total(total)
        self._run.change(lambda r: _set_total(r, checked), at_once=True)

    def increment(self, by: int = 1) -> None:
        """Add ``by`` to the count; written at most once per throttle interval."""
        step = _check_count("step", by)
        self._run.change(lambda r: _set_value(r, _check_count("value", r._value + step)), False)

    def decrement(self, by: int = 1) -> None:
        """Take ``by`` from the count; written at most once per throttle interval."""
        step = _check_count("step", by)
        self._run.change(lambda r: _set_value(r, _check_count("value", r._value - step)), False)

    def finish(self) -> None:
        """The count reaches the total (if there is one); written at once."""
        self._run.change(
            lambda r: _set_value(r, r._total if r._total is not None else r._value), at_once=True
        )

    @property
    def fraction(self) -> float | None:
        """value / total, None without a (non-zero) total."""
        total = self._run._total
        return self._run._value / total if total else None

    def __repr__(self) -> str:
        return f"<Progress {self.value}/{self.total}>"


def _set_value(run: RunStatus, value: int) -> None:
    run._value = value
    run._progress_touched = True


def _set_total(run: RunStatus, total: int | None) -> None:
    run._total = total
    run._progress_touched = True


class StatusFields(MutableMapping[str, Any]):
    """``self.status``: named fields of the run's status, JSON values; every change is
    written at once. ``total`` and ``progress`` set the progress instead (as in
    ``update(step="C", total=50, progress=0)``); ``id``, ``state`` and ``value`` are
    ``to_dict()``'s own keys and are refused."""

    def __init__(self, run: RunStatus) -> None:
        self._run = run

    def __getitem__(self, key: str) -> Any:
        return self._run._fields[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        if key not in self._run._fields:
            raise KeyError(key)
        self._run.change(lambda r: _delete_field(r, key), at_once=True)

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._run._fields))

    def __len__(self) -> int:
        return len(self._run._fields)

    def update(  # type: ignore[override]  # one write for the lot, progress keys routed
        self, other: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), /, **kwargs: Any
    ) -> None:
        items = dict(other)
        items.update(kwargs)
        fields: dict[str, Any] = {}
        total: tuple[int | None] | None = None
        value: int | None = None
        for key, item in items.items():
            if not isinstance(key, str):
                raise TypeError(f"status field names must be strings, got {key!r}")
            if key == "total":
                total = (_check_total(item),)
            elif key == "progress":
                value = _check_count("value", item)
            elif key in RESERVED_KEYS:
                raise ValueError(
                    f"{key!r} cannot be a status field: it is one of tomqueue.status()'s own "
                    "keys (id, state, progress, value, total)"
                )
            else:
                check_field_value(item, f"status[{key!r}]")
                fields[key] = item

        def edit(run: RunStatus) -> None:
            if total is not None:
                _set_total(run, total[0])
            if value is not None:
                _set_value(run, value)
            if fields:
                run._fields.update(fields)
                run._fields_touched = True

        self._run.change(edit, at_once=True)

    def __repr__(self) -> str:
        return f"<status {self._run._fields!r}>"


def _delete_field(run: RunStatus, key: str) -> None:
    run._fields.pop(key, None)
    run._fields_touched = True


def check_field_value(value: Any, path: str) -> None:
    """Refuse what the jsonb column would not take back as the same value: non-JSON types,
    NaN and infinities, non-string keys, and text with NUL or unpaired surrogates."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path} is {value!r}, which JSON cannot hold")
        return
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_field_value(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has the key {key!r}; JSON object keys must be strings")
            _check_text(key, f"{path} key")
            check_field_value(item, f"{path}[{key!r}]")
        return
    raise TypeError(
        f"{path} holds a {type(value).__name__}, which is not JSON "
        "(use str, int, float, bool, None, list or dict)"
    )


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{path} contains a NUL character, which PostgreSQL's jsonb refuses")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{path} is not valid Unicode text ({exc.reason})") from None


# -- which RunStatus belongs to which job object -------------------------------------------

_runs: dict[int, RunStatus | Callable[[], RunStatus]] = {}  # by id(job): a job may
# define __eq__ and so be unhashable
_runs_lock = threading.Lock()


def attach(job: object, make: Callable[[], RunStatus]) -> None:
    """Give ``job`` the RunStatus ``make()`` returns for this run, made on first use (the
    worker, before the job's hooks: a job that reports nothing costs no RunStatus)."""
    with _runs_lock:
        _runs[id(job)] = make


def detach(job: object) -> RunStatus | None:
    """Take ``job``'s RunStatus away once the run has ended; None if none was made."""
    with _runs_lock:
        run = _runs.pop(id(job), None)
    return run if isinstance(run, RunStatus) else None


def run_status_of(job: object) -> RunStatus:
    """The job's RunStatus: the worker's, else one in memory made on first use (dropped
    when the job object is)."""
    key = id(job)
    with _runs_lock:
        found = _runs.get(key)
        if isinstance(found, RunStatus):
            return found
        if found is not None:
            run = _runs[key] = found()
            return run
        run = _runs[key] = RunStatus()
    weakref.finalize(job, _forget, key, run)
    return run


def _forget(key: int, run: RunStatus) -> None:
    with _runs_lock:
        if _runs.get(key) is run:
            del _runs[key]
