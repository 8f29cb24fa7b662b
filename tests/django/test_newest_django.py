"""The Django tests again on the newest Django (6+, ``django.tasks`` built in), where this
machine has the Python it needs (3.12 or newer). Django 6 is not installable on Python
3.11, so without such an interpreter this test skips and says why; the rest of
tests/django has run on Django 5.2 with the django-tasks backport either way."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

VENV = ROOT / ".venv-django-newest"
CANDIDATES = ("python3.14", "python3.13", "python3.12", "python3")


def pyenv_pythons() -> list[str]:
    """Interpreters pyenv installed (its shims on PATH answer only for the versions it
    has selected, so a 3.12 it holds is not found there), newest first."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = [p / "bin" / "python3" for p in root.glob("3.*") if (p / "bin" / "python3").exists()]

    def version(path: Path) -> tuple[int, ...]:
        parts = path.parent.parent.name.split(".")
        return tuple(int(part) if part.isdigit() else 0 for part in parts)

    return [str(path) for path in sorted(found, key=version, reverse=True)]


def newest_python() -> str | None:
    """A Python 3.12+ interpreter: TOMQUEUE_PY312 if set, else the first found on PATH or
    among pyenv's versions."""
    named = os.environ.get("TOMQUEUE_PY312")
    on_path = [shutil.which(c) for c in CANDIDATES]
    for candidate in ([named] if named else []) + on_path + pyenv_pythons():
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


@pytest.mark.timeout(1800)
def test_the_django_tests_pass_on_the_newest_django() -> None:
    python = newest_python()
    if python is None:
        pytest.skip(
            "no Python 3.12+ interpreter on this machine (set TOMQUEUE_PY312 to one): the "
            "newest Django (6, with django.tasks built in) needs it, so tests/django ran "
            "on Django 5.2 with the django-tasks backport only"
        )
    venv_python = VENV / "bin" / "python"
    if not venv_python.exists():
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev,django]"],
        check=True,
        cwd=ROOT,
    )
    version = subprocess.run(
        [str(venv_python), "-c", "import django; print(django.VERSION[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(version.stdout) >= 6, f"expected Django 6+, got {version.stdout}"
    run = subprocess.run(
        [
            str(venv_python),
            "-m",
            "pytest",
            "tests/django",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not newest_django",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=1500,
    )
    assert run.returncode == 0, "tests/django failed on the newest Django"
