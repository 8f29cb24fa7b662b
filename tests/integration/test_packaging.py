"""The built wheel carries its migrations (`tomqueue migrate` works from a plain install)
and its py.typed marker."""

import subprocess
import sys
import uuid
import zipfile

import psycopg
import pytest

from tests.conftest import BASE_DB_URL, ROOT, libpq, with_database

pytestmark = pytest.mark.integration


def test_wheel_ships_migrations_and_migrates(tmp_path, servers):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("tomqueue-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tomqueue/_migrations/env.py" in names
    assert "tomqueue/py.typed" in names  # users' mypy reads tomqueue's annotations
    assert any(n.startswith("tomqueue/_migrations/versions/0001") for n in names)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    name = f"tq_wheel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(BASE_DB_URL), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        env = {
            "PYTHONPATH": str(target),
            "TOMQUEUE_DATABASE_URL": with_database(BASE_DB_URL, name),
            "PATH": "/usr/bin:/bin",
        }
        check = subprocess.run(
            [sys.executable, "-c", "import tomqueue; print(tomqueue.__file__)"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert check.stdout.startswith(str(target))
        for _ in range(2):  # idempotent
            result = subprocess.run(
                [sys.executable, "-m", "tomqueue", "migrate"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
        with psycopg.connect(libpq(with_database(BASE_DB_URL, name))) as conn:
            assert conn.execute("SELECT count(*) FROM tomqueue_jobs").fetchone() == (0,)
    finally:
        with psycopg.connect(libpq(BASE_DB_URL), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
