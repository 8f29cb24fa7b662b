"""DjangoTransaction: tomqueue's enqueue, written through a Django database connection.

The row is inserted with Django's own cursor, so it is part of whatever transaction that
connection is in: inside ``transaction.atomic()`` it commits or rolls back with the
caller's work (a savepoint included), and in autocommit it is committed by the statement
itself. The announcement to RabbitMQ waits in ``transaction.on_commit(..., robust=True)``:
Django runs it once the outermost atomic block commits (at once in autocommit) and drops
it on rollback, so a job the caller rolled back is never announced, and a committed one
whose announcement fails is still healed by tomqueue's sweep.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from django.db import connections, transaction


class DjangoTransaction:
    """``tomqueue.enqueue.caller.CallerTransaction`` over Django's connection ``using``."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def run(self, sql: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.description is None:
                return []
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        zone = _naive_zone(connection)
        return [
            {name: _aware(value, zone) for name, value in zip(names, row, strict=True)}
            for row in rows
        ]

    def on_commit(self, callback: Callable[[], None]) -> None:
        transaction.on_commit(callback, using=self.using, robust=True)


def _naive_zone(connection: Any) -> tzinfo:
    """The zone of the naive datetimes Django's connection returns (USE_TZ = False: the
    connection's time zone); with USE_TZ they are aware already."""
    return zoneinfo.ZoneInfo(connection.timezone_name)


def _aware(value: object, zone: tzinfo) -> object:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value
