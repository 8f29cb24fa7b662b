"""What goes in ``last_error``: the true error, always storable, never too big.

User code can raise anything: an exception whose ``__str__`` raises, a message with NUL
bytes or lone surrogates (PostgreSQL text refuses both), a traceback of megabytes from deep
recursion. Failing to *record* a failure would leave the job locked by a live worker, so
everything here is total: it returns text PostgreSQL accepts, whatever it is given.
"""

from __future__ import annotations

import traceback

MAX_ERROR_CHARS = 64 * 1024


def describe_error(exc: BaseException) -> str:
    """The message first (for listings), then the traceback; never raises."""
    head = f"{type(exc).__name__}: {_safe_str(exc)}"
    try:
        trace = "".join(traceback.format_exception(exc)).strip()
    except Exception as trace_exc:  # a broken __str__ or __repr__ in the chain
        trace = f"(traceback unavailable: {type(trace_exc).__name__})"
    return storable(f"{head}\n{trace}")


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as str_exc:
        return f"<str() of the exception raised {type(str_exc).__name__}>"


def storable(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` made safe for a PostgreSQL text column and cut to ``limit`` characters.

    NUL becomes ``\\x00`` and lone surrogates their escapes; an over-long text keeps its
    head (the message and the outer frames) and its tail (where the error was raised).
    """
    cleaned = text.replace("\x00", "\\x00")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        cleaned = cleaned.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(cleaned) <= limit:
        return cleaned
    marker = "\n... [{} characters cut] ...\n"
    room = limit - len(marker.format(len(cleaned)))
    head = room // 2
    tail = room - head
    cut = len(cleaned) - head - tail
    return cleaned[:head] + marker.format(cut) + cleaned[-tail:]
