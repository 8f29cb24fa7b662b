"""The dashboard over HTTP on the real servers: every page, the JSON API, the actions and
their confirmations, and the gate (loopback only without a token, the token with one,
CSRF on every browser POST, escaping of job data)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

import tomqueue
from tests.admin_rows import fail, insert, live_lease
from tests.browser.harness import free_port
from tests.conftest import ROOT, wait_until
from tests.jobs import Record
from tomqueue.dashboard import create_app
from tomqueue.dashboard.security import CSRF_COOKIE, SESSION_COOKIE

pytestmark = pytest.mark.integration

TOKEN = "a-long-dashboard-token-for-tests"
LOCAL = {"base_url": "http://127.0.0.1", "client": ("127.0.0.1", 50000)}


def local(**kwargs) -> TestClient:
    return TestClient(create_app(stats_cache_seconds=0, **kwargs), **LOCAL)


def csrf_of(client: TestClient, path: str = "/jobs") -> str:
    """The CSRF token a page's forms carry (and the nonce cookie it sets)."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def test_every_page_renders_over_real_data(tq):
    job_id = insert(3, class_name="tests.jobs.AlwaysFails", label="p")[0]
    fail(tq, job_id)
    client = local()
    for path in ("/", "/?hours=24", "/jobs", "/jobs?state=failed&class=AlwaysFails",
                 f"/jobs/{job_id}", "/workers", "/queues"):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "text/html" in response.headers["content-type"]
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    assert "tests.jobs.AlwaysFails" in client.get(f"/jobs/{job_id}").text
    assert client.get("/jobs/999999").status_code == 404
    assert client.get("/jobs?state=bogus").status_code == 400
    assert client.get("/static/dashboard.css").status_code == 200


def test_overview_counts_and_chart_come_from_the_tables(tq, run_worker):
    ids = tomqueue.enqueue_many([Record(f"c{i}") for i in range(4)])
    run_worker()
    wait_until(lambda: all(tq.job(i) is None for i in ids), message="drained")
    insert(2)
    html = local().get("/").text
    assert re.search(r'data-state="queued">2<', html)
    assert "Succeeded: 4 in 1 h" in html and html.count("<rect") >= 120  # two charts, 1 min bars
    stats = local().get("/api/stats").json()
    assert (stats["queued"], stats["failed"], stats["running"]) == (2, 0, 0)


def test_the_job_api_returns_the_status(tq, run_worker):
    job_id = tomqueue.enqueue(Record("api"))
    client = local()
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "queued"
    run_worker()
    wait_until(lambda: client.get(f"/api/jobs/{job_id}").json()["state"] == "completed",
               message="completed")  # fmt: skip
    missing = client.get("/api/jobs/999999")
    assert missing.status_code == 404 and missing.json() == {"error": "not found"}


def test_job_data_is_escaped_on_every_page(tq):
    hostile = "<script>alert(1)</script><b onmouseover=x>"
    job_id = insert(class_name="tests.jobs.Record", label=hostile)[0]
    fail(tq, job_id, error=hostile)
    client = local()
    for path in ("/", "/jobs", f"/jobs/{job_id}", "/jobs?error=script"):
        text = client.get(path).text
        assert "<script>" not in text and "<b onmouseover" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/jobs/{job_id}").text


def test_an_action_asks_first_then_acts_once(tq):
    job_id = insert()[0]
    fail(tq, job_id)
    client = local()
    token = csrf_of(client, f"/jobs/{job_id}")
    asked = client.post(f"/jobs/{job_id}/retry", data={"csrf": token})
    assert asked.status_code == 200 and f"Retry job {job_id}?" in asked.text
    assert tq.job(job_id)["failed_at"] is not None  # nothing done yet
    done = client.post(f"/jobs/{job_id}/retry", data={"csrf": token, "confirmed": "yes"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and "notice=retried" in done.headers["location"]
    assert tq.job(job_id)["failed_at"] is None


def test_reschedule_priority_and_run_now(tq):
    job_id = insert()[0]
    client = local()
    token = csrf_of(client, f"/jobs/{job_id}")

    def act(action: str, **fields: str) -> httpx.Response:
        return client.post(f"/jobs/{job_id}/{action}",
                           data={"csrf": token, "confirmed": "yes", **fields})  # fmt: skip

    before = datetime.now(UTC)
    assert "was rescheduled" in act("reschedule", in_seconds="3600").text
    assert tq.job(job_id)["run_at"] > before + timedelta(minutes=59)
    assert "new priority" in act("priority", priority="7").text
    assert tq.job(job_id)["priority"] == 7
    assert "is due now" in act("run-now").text
    assert tq.job(job_id)["run_at"] <= datetime.now(UTC)
    bad = act("reschedule", in_seconds="soon")
    assert bad.status_code == 400 and "seconds must be a number" in bad.text
    assert act("priority", priority=str(2**40)).status_code == 400
    assert act("explode").status_code == 404


def test_a_running_job_cannot_be_retried_or_deleted(tq):
    job_id = insert()[0]
    client = local()
    token = csrf_of(client)
    with live_lease(tq, job_id):
        for action in ("retry", "delete", "run-now"):
            page = client.post(f"/jobs/{job_id}/{action}", data={"csrf": token, "confirmed": "yes"})
            assert "running on a live worker" in page.text
        assert tq.job(job_id)["locked_by"] is not None


def test_bulk_delete_counts_first_and_leaves_running_jobs(tq):
    doomed = insert(4, class_name="tests.jobs.AlwaysFails", label="d")
    kept = insert(2)
    client = local()
    token = csrf_of(client)
    asked = client.post("/bulk/delete", data={"csrf": token, "class": "AlwaysFails"})
    assert re.search(r'class="match-count">4<', asked.text)
    with live_lease(tq, doomed[0]):
        done = client.post("/bulk/delete",
                           data={"csrf": token, "class": "AlwaysFails", "confirmed": "yes"})  # fmt: skip
        assert "Deleted 3 job(s)" in done.text and "1 running job(s) were left alone" in done.text
    assert [tq.job(i) is None for i in doomed] == [False, True, True, True]
    assert all(tq.job(i) is not None for i in kept)


def test_a_post_without_the_csrf_token_changes_nothing(tq):
    job_id = insert()[0]
    client = local()
    good = csrf_of(client)
    for data in ({"confirmed": "yes"}, {"csrf": "forged", "confirmed": "yes"}):
        refused = client.post(f"/jobs/{job_id}/delete", data=data)
        assert refused.status_code == 403 and "Nothing was changed" in refused.text
    # a token from another browser (another nonce cookie) is refused too
    other = local()
    other.get("/jobs")
    assert other.post(f"/jobs/{job_id}/delete", data={"csrf": good, "confirmed": "yes"}
                      ).status_code == 403  # fmt: skip
    assert tq.job(job_id) is not None
    cookie = client.cookies.get(CSRF_COOKIE)
    assert (
        cookie
        and "samesite=strict"
        in client.get("/jobs").headers.get("set-cookie", "samesite=strict").lower()
    )


def test_without_a_token_only_loopback_clients_naming_localhost(tq):
    app = create_app()
    remote = TestClient(app, base_url="http://127.0.0.1", client=("10.1.2.3", 50000))
    assert remote.get("/").status_code == 403
    assert remote.get("/api/stats").status_code == 403
    rebound = TestClient(app, base_url="http://evil.example", client=("127.0.0.1", 50000))
    assert rebound.get("/").status_code == 403  # DNS rebinding: the Host names another site
    assert (
        TestClient(app, base_url="http://localhost:8089", client=("127.0.0.1", 1))
        .get("/")
        .status_code
        == 200
    )
    trusted = create_app(trusted_hosts=["queue.internal"])
    assert (
        TestClient(trusted, base_url="http://queue.internal", client=("127.0.0.1", 1))
        .get("/")
        .status_code
        == 200
    )


def test_with_a_token_every_request_needs_it(tq):
    job_id = insert()[0]
    app = create_app(token=TOKEN)
    client = TestClient(app, base_url="http://dash.example", client=("10.0.0.9", 50000))
    to_login = client.get("/jobs?state=failed", follow_redirects=False)
    assert to_login.status_code == 303
    assert to_login.headers["location"].endswith("/login?next=%2Fjobs%3Fstate%3Dfailed")
    assert client.get("/api/stats").status_code == 401
    assert client.get("/api/stats", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}
                      ).status_code == 401  # fmt: skip
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/stats", headers=bearer).json()["queued"] == 1
    # a script with the bearer token acts without a CSRF token (no browser adds that header)
    deleted = client.post(f"/jobs/{job_id}/delete", data={"confirmed": "yes"}, headers=bearer)
    assert deleted.status_code == 200 and tq.job(job_id) is None


def test_the_login_form_sets_a_signed_session(tq):
    client = TestClient(create_app(token=TOKEN), base_url="http://dash.example",
                        client=("10.0.0.9", 50000))  # fmt: skip
    token = csrf_of(client, "/login")
    wrong = client.post("/login", data={"csrf": token, "token": "not-it", "next": "/jobs"})
    assert wrong.status_code == 401 and "That is not the token" in wrong.text
    assert client.get("/jobs", follow_redirects=False).status_code == 303
    ok = client.post("/login", data={"csrf": token, "token": TOKEN, "next": "/jobs"},
                     follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303 and ok.headers["location"] == "/jobs"
    assert "httponly" in ok.headers["set-cookie"].lower()
    assert client.get("/jobs").status_code == 200
    # a session cookie signed for another token is worth nothing
    forger = TestClient(client.app, base_url="http://dash.example", client=("10.0.0.9", 1))
    forger.cookies.set(SESSION_COOKIE, "eyJvayI6dHJ1ZX0.forged.sig")
    assert forger.get("/jobs", follow_redirects=False).status_code == 303
    # an offsite next is ignored
    away = client.post("/login", data={"csrf": token, "token": TOKEN, "next": "//evil.example"},
                       follow_redirects=False)  # fmt: skip
    assert away.headers["location"] == "http://dash.example/"
    logged_out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert logged_out.status_code == 303
    assert client.get("/jobs", follow_redirects=False).status_code == 303


def test_a_short_token_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        create_app(token="short")


def test_mounted_under_a_path_of_another_app(tq):
    job_id = insert()[0]
    host = Starlette(routes=[Mount("/ops/queue", app=create_app())])
    client = TestClient(host, **LOCAL)
    page = client.get(f"/ops/queue/jobs/{job_id}")
    assert page.status_code == 200
    assert f'action="http://127.0.0.1/ops/queue/jobs/{job_id}/delete"' in page.text
    assert 'href="http://127.0.0.1/ops/queue/static/dashboard.css"' in page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = client.post(f"/ops/queue/jobs/{job_id}/delete",
                       data={"csrf": token, "confirmed": "yes"}, follow_redirects=False)  # fmt: skip
    assert done.headers["location"].startswith("http://127.0.0.1/ops/queue/jobs?")
    assert tq.job(job_id) is None


def test_database_down_is_a_clear_503(tq):
    tomqueue.configure(database_url="postgresql+psycopg://tomqueue:tomqueue@127.0.0.1:1/nope")
    client = local()
    page = client.get("/jobs")
    assert page.status_code == 503 and "PostgreSQL is unreachable" in page.text
    assert client.get("/api/stats").status_code == 503


def test_the_queues_page_reads_rabbitmq(tq, run_worker):
    run_worker()
    from tomqueue.admin import Admin

    wait_until(lambda: any(q.consumers for q in Admin().queues()), message="worker consuming")
    html = local().get("/queues").text
    consumers = re.findall(r'<td class="n ?(?:bad)?">(\d+)</td>\s*<td class="n">', html)
    assert f"{tq.prefix}" in html and "1" in consumers  # the worker consumes the level queues


def test_the_cli_serves_the_dashboard_and_guards_its_address(tq):
    refused = tq.cli("dashboard", "--host", "0.0.0.0")
    assert refused.returncode == 2 and "without a token" in refused.stderr
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tomqueue", "dashboard", "--port", str(port)],
                            cwd=ROOT, env=tq.environ, stderr=subprocess.PIPE)  # fmt: skip
    try:

        def served() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=2)
            except httpx.TransportError:
                return None

        response = wait_until(served, message="the dashboard answering")
        assert response.status_code == 200 and response.json()["queued"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=15)
