"""The NameWorker demo, as the team tried it by hand: load the page, pull the plug on every
process 3 s into the job (bin/rip: SIGKILL), start again with bin/dev, and see the job
finish with its success message, exactly once. Driven in headless Chromium."""

from __future__ import annotations

import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.harness import free_port
from tests.conftest import ROOT, wait_until

if TYPE_CHECKING:  # imported for its type only: pytest would try to collect it
    from tests.conftest import TestEnv

SCREENSHOTS = ROOT / "test-screenshots"


class Demo:
    """bin/dev and bin/rip over this test's database, queue prefix, port and run dir."""

    def __init__(self, tq: TestEnv, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **tq.environ,
            "NAMEWORKER_PORT": str(self.port),
            "NAMEWORKER_RUN_DIR": str(run_dir),
        }
        self.starts = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = open(self.log(self.starts), "wb")  # noqa: SIM115 - the process writes it
        proc = subprocess.Popen(
            [str(ROOT / "bin" / "dev")], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()
        wait_until(self.answers, timeout=90, interval=0.2, message="bin/dev's web server")
        return proc

    def log(self, start: int) -> Path:
        return self.run_dir / f"dev-{start}.log"

    def logs(self) -> str:
        return "".join(self.log(n).read_text() for n in range(1, self.starts + 1))

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def rip(self) -> str:
        done = subprocess.run(
            [str(ROOT / "bin" / "rip")],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def marked_processes(self) -> list[int]:
        """Live processes that bin/dev started (its mark is in their environment)."""
        mark = f"TOMQUEUE_DEV_RUN={self.run_dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if mark in environ and state != "Z":
                found.append(int(entry.name))
        return found


@pytest.fixture
def demo(tq: TestEnv, tmp_path: Path) -> Iterator[Demo]:
    found = Demo(tq, tmp_path)
    try:
        yield found
    finally:
        found.rip()


def progress_of(page: Any) -> float:
    return float(page.eval_on_selector("#progress", "bar => bar.value"))


@pytest.mark.timeout(300)
def test_a_name_job_survives_every_process_being_killed_and_finishes_once(
    demo: Demo, tq: TestEnv, page: Any
) -> None:
    first = demo.start()
    name = f"Ada {uuid.uuid4().hex[:6]}"
    page.goto(f"{demo.url}/?name={name.replace(' ', '+')}")
    match = re.search(r"/jobs/(\d+)/$", page.url)
    assert match, f"the form did not lead to a job page: {page.url}"
    job_id = int(match.group(1))

    # 3 s into the job: its progress (one step a second, of ten) reads 30 %
    page.wait_for_selector("#state.state-working", timeout=30_000)
    assert page.inner_text("#name") == name
    page.wait_for_function(
        "document.getElementById('progress').value >= 0.3", timeout=30_000, polling=100
    )
    said = demo.rip()
    assert first.wait(10) is not None
    assert demo.marked_processes() == [], said
    assert "SIGKILLed" in said

    # everything is dead mid-job: the row is still there, held by the dead worker, no
    # greeting was written, and the page says the server is gone (and keeps trying)
    row = tq.job(job_id)
    assert row is not None and row["locked_by"] is not None and row["failed_at"] is None
    assert tq.scalar("SELECT count(*) FROM names_greeting WHERE name = %s", name) == 0
    page.wait_for_selector("#connection:has-text('not answering')", timeout=10_000)
    assert progress_of(page) < 1.0
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "nameworker-killed.png"), full_page=True)

    demo.start()
    # the very page left open shows the job finish once everything is back
    page.wait_for_selector("#state.state-completed", timeout=90_000)
    message = page.inner_text("#message")
    assert message == f"Hello, {name}! Your name was worked on for 10 seconds."
    assert progress_of(page) == 1.0
    assert page.inner_text("#connection") == ""
    page.screenshot(path=str(SCREENSHOTS / "nameworker-finished.png"), full_page=True)

    # exactly once: one greeting, one success logged, the row deleted
    assert tq.scalar("SELECT count(*) FROM names_greeting WHERE name = %s", name) == 1
    assert tq.job(job_id) is None
    wait_until(
        lambda: "NameJob succeeded" in demo.logs(), timeout=10, message="the worker's log line"
    )
    logs = demo.logs()
    assert logs.count(f"NameJob succeeded: Hello, {name}!") == 1, logs
    assert "NameJob ran again" not in logs
    # the home page lists the greeting once
    page.goto(demo.url + "/")
    assert page.locator(".greetings li", has_text=name).count() == 1
    page.screenshot(path=str(SCREENSHOTS / "nameworker-home.png"), full_page=True)
