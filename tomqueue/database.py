"""Database plumbing: engines, the advisory-lock namespace, and retry on lost connections."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError

from tomqueue.errors import DatabaseUnavailableError
from tomqueue.settings import mask_url

log = logging.getLogger(__name__)

T = TypeVar("T")

# classid of every advisory lock tomqueue takes ("tomq" in ASCII): workers' liveness leases
# and the deferred manager's leadership live in this namespace.
ADVISORY_NAMESPACE = 0x746F6D71


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """A pooled engine; no pre-ping (a round trip per job): lost connections are retried."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=3600,
        connect_args={"connect_timeout": 5},
    )


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean "the server went away", worth a reconnect and retry."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


def retry_on_disconnect(
    operation: Callable[[], T],
    what: str,
    url: str,
    attempts: int | None = 8,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
    should_stop: Callable[[], bool] | None = None,
) -> T:
    """Run ``operation``, retrying with backoff while the database is unreachable.

    ``attempts=None`` retries until ``should_stop()`` says otherwise: workers use that so a
    PostgreSQL restart costs them a pause, never the outcome of a job they have run.
    """
    delay = first_delay
    tries = 0
    while True:
        tries += 1
        try:
            return operation()
        except (OperationalError, DBAPIError) as exc:
            if not is_connection_error(exc):
                raise
            out_of_tries = attempts is not None and tries >= attempts
            if out_of_tries or (should_stop is not None and should_stop()):
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {mask_url(url)} is unreachable while trying to {what}: "
                    f"{type(exc.orig).__name__ if exc.orig else type(exc).__name__}"
                ) from exc
            log.warning(
                "PostgreSQL at %s unreachable while trying to %s; retrying in %.1fs",
                mask_url(url),
                what,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
