"""How fast the dashboard's jobs pages answer on a table of 1,000,000 rows (keyset paging).

Run by ``bin/bench-dashboard``: fills the table of its own database with generated rows
(90 % queued, 5 % scheduled, 5 % failed, five classes), then times each page through the
ASGI app (no network) and prints the median of several requests per page.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import psycopg
from starlette.testclient import TestClient

import tomqueue
from tomqueue.dashboard import create_app

ROWS = int(os.environ.get("ROWS", "1000000"))
PAGES = {
    "first page, all jobs": "/jobs",
    "page 1000 (after id 50,000)": "/jobs?after=50000",
    "failed jobs": "/jobs?state=failed",
    "one class": "/jobs?class=Reindex",
    "class + failed": "/jobs?class=ChargeCard&state=failed",
    "error text (a scan)": "/jobs?error=declined",
    "job detail": "/jobs/500000",
    "overview (counts by state, level, queue, class: a scan)": "/",
}


def fill(url: str) -> None:
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        have = c.execute("SELECT count(*) FROM tomqueue_jobs").fetchone()
        if have and have[0] == ROWS:
            return
        c.execute("TRUNCATE tomqueue_jobs RESTART IDENTITY")
        c.execute(
            """INSERT INTO tomqueue_jobs (priority, attempts, handler, run_at, queue, failed_at,
                   last_error, released_at)
               SELECT 0, CASE WHEN i %% 20 = 0 THEN 25 ELSE 0 END,
                 '{"class":"app.jobs.' || (ARRAY['SendInvoice','ChargeCard','Newsletter',
                 'NightlyReport','Reindex'])[i %% 5 + 1] || '","state":{"n":' || i || '},"v":1}',
                 now() + CASE WHEN i %% 20 = 1 THEN interval '1 day' ELSE interval '0' END,
                 NULL, CASE WHEN i %% 20 = 0 THEN now() END,
                 CASE WHEN i %% 20 = 0 THEN 'GatewayError: card declined' END, now()
               FROM generate_series(1, %s) AS i""",
            (ROWS,),
        )
        c.execute("ANALYZE tomqueue_jobs")


def main() -> int:
    url = os.environ["TOMQUEUE_DATABASE_URL"]
    fill(url)
    client = TestClient(create_app(stats_cache_seconds=0), base_url="http://127.0.0.1",
                        client=("127.0.0.1", 1))  # fmt: skip
    print(f"{ROWS:,} rows; median of 7 requests per page")
    for name, path in PAGES.items():
        times = []
        for _ in range(7):
            start = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, (path, response.status_code)
        print(f"| {name} | `{path}` | {statistics.median(times) * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    tomqueue.configure()
    sys.exit(main())
