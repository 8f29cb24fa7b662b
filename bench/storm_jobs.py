"""Job for the fault benchmark: records each start and end with the worker's pid."""

from __future__ import annotations

import os
import threading
import time

import psycopg

import tomqueue
from tomqueue.default_app import current_settings

_local = threading.local()


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        url = current_settings().database_url.replace("postgresql+psycopg://", "postgresql://")
        conn = _local.conn = psycopg.connect(url, autocommit=True)
    return conn


def _note(key: int, event: str) -> None:
    for _ in range(50):  # ride out a PostgreSQL restart
        try:
            _conn().execute(
                "INSERT INTO storm_runs (key, event, pid) VALUES (%s, %s, %s)",
                (key, event, os.getpid()),
            )
            return
        except psycopg.OperationalError:
            _local.conn = None
            time.sleep(0.2)


class StormJob(tomqueue.Job):
    def __init__(self, key: int, seconds: float) -> None:
        self.key = key
        self.seconds = seconds

    def perform(self) -> None:
        _note(self.key, "start")
        time.sleep(self.seconds)
        _note(self.key, "end")
