"""Enqueue one unique job at a given instant, so that many processes race for one key.

Run as ``python -m tests.unique_enqueuer START_AT ACCOUNT MODE``: it connects first, waits
until the wall clock reaches START_AT (seconds since the epoch), enqueues
``UniqueRefresh(ACCOUNT)`` (MODE ``plain``, or ``session`` inside a SQLAlchemy session's
transaction) and prints the id it got.
"""

from __future__ import annotations

import sys
import time

from sqlalchemy.orm import Session

import tomqueue
from tests.jobs import UniqueRefresh
from tomqueue.default_app import default_app

start_at, account, mode = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
app = default_app()
app.ensure_prefix_bound()
with app.engine.connect() as warm:  # the pool's first connection, made before the race
    warm.exec_driver_sql("SELECT 1")
time.sleep(max(0.0, start_at - time.time()))
if mode == "session":
    with Session(app.engine) as session, session.begin():
        job_id = tomqueue.enqueue(UniqueRefresh(account), session=session)
        time.sleep(0.05)  # hold the transaction open while the others try
else:
    job_id = tomqueue.enqueue(UniqueRefresh(account))
print(job_id, flush=True)
