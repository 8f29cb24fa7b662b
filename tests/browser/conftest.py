"""Browser fixtures: the dashboard on a real port over the test's database, and a page of
headless Chromium. Without Chromium the tests skip, saying so; bin/setup installs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.harness import chromium, chromium_path, served
from tests.conftest import TestEnv
from tomqueue.dashboard import create_app

SCREENSHOTS = "test-screenshots"  # failures leave a picture here


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; bin/setup does it)")
    with chromium() as found:
        yield found


@pytest.fixture
def dashboard(tq: TestEnv) -> Iterator[str]:
    """The dashboard over this test's database and queues; yields its base URL."""
    with served(create_app(stats_cache_seconds=0)) as url:
        yield url


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    found = context.new_page()
    found.set_default_timeout(10_000)
    yield found
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        found.screenshot(path=f"{SCREENSHOTS}/{request.node.name}.png", full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
