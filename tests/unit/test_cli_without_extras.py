"""The `tomqueue` command works with the core install alone: the dashboard's libraries
(an extra) are imported by `tomqueue dashboard` only, which then says what to install."""

import subprocess
import sys

from tests.conftest import ROOT

# a Python whose dashboard libraries cannot be imported, as after `pip install tomqueue`
WITHOUT_DASHBOARD = (
    "import sys\n"
    "for name in ('itsdangerous', 'starlette', 'jinja2', 'uvicorn', 'multipart'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['tomqueue', *sys.argv[1:]]\n"
    "from tomqueue.cli import run\n"
    "run()\n"
)


def tomqueue_without_dashboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_DASHBOARD, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_loads_and_answers_without_the_dashboard_extra():
    done = tomqueue_without_dashboard("--help")
    assert done.returncode == 0, done.stderr
    assert "workers" in done.stdout and "dashboard" in done.stdout


def test_tomqueue_dashboard_says_which_extra_it_needs():
    done = tomqueue_without_dashboard("dashboard", "--port", "0")
    assert done.returncode == 2
    assert "pip install 'tomqueue[dashboard]'" in done.stderr
