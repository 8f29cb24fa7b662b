"""The operator CLI, in-process with CliRunner and as a real subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner

import tomqueue
from tests.conftest import ROOT, wait_until
from tests.jobs import AlwaysFails, Record
from tomqueue.cli import main
from tomqueue.migrate import alembic_config

pytestmark = pytest.mark.integration


def test_migrate_is_idempotent_as_a_subprocess(tq):
    first = tq.cli("migrate")
    second = tq.cli("migrate")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    head = ScriptDirectory.from_config(alembic_config(tq.database_url)).get_current_head()
    assert f"schema at revision {head}" in second.stdout
    assert f"database bound to prefix '{tq.prefix}'" in second.stdout


def test_jobs_lists_and_filters_failed(tq, run_worker):
    ok = tomqueue.enqueue(Record("pending"))
    bad = tomqueue.enqueue(AlwaysFails("broken"))
    tq.sql(
        "UPDATE tomqueue_jobs SET failed_at = now(), last_error = 'ValueError: boom' WHERE id = %s",
        bad,
    )
    result = CliRunner().invoke(main, ["jobs"])
    assert result.exit_code == 0 and str(ok) in result.output and "failed" in result.output
    failed = CliRunner().invoke(main, ["jobs", "--failed"])
    assert "ValueError: boom" in failed.output and "Record" not in failed.output


def test_retry_of_a_failed_job_runs_it_again(tq, run_all):
    job_id = tomqueue.enqueue(AlwaysFails("retry-me"))
    run_all()
    wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") is not None)
    assert tq.count_runs("retry-me") == 2
    result = CliRunner().invoke(main, ["retry", str(job_id)])
    assert result.exit_code == 0, result.output
    wait_until(lambda: tq.count_runs("retry-me") == 4, message="two more attempts")
    wait_until(lambda: (tq.job(job_id) or {}).get("failed_at") is not None)


def test_delete_and_bad_ids(tq):
    job_id = tomqueue.enqueue(Record("del"))
    assert CliRunner().invoke(main, ["delete", str(job_id)]).exit_code == 0
    assert tq.job(job_id) is None
    missing = CliRunner().invoke(main, ["delete", str(job_id)])
    assert missing.exit_code == 1 and "no job" in missing.output
    assert CliRunner().invoke(main, ["retry", "999999"]).exit_code == 1
    assert CliRunner().invoke(main, ["retry", "abc"]).exit_code == 2


def test_unreachable_database_names_the_url_without_password(tq):
    env = tq.environ | {
        "TOMQUEUE_DATABASE_URL": "postgresql+psycopg://tomqueue:hunter2@127.0.0.1:1/x"
    }
    result = subprocess.run(
        [sys.executable, "-m", "tomqueue", "jobs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "127.0.0.1:1" in result.stderr and "hunter2" not in result.stderr


def test_republish_heals_a_job_whose_notification_was_lost(tq, run_worker):
    tomqueue.configure(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    job_id = tomqueue.enqueue(Record("lost"))
    tomqueue.configure(amqp_url=tq.amqp_url)
    result = CliRunner().invoke(main, ["republish"])
    assert result.exit_code == 0 and "republished 1" in result.output
    run_worker()
    wait_until(lambda: tq.job(job_id) is None)


BIN = Path(sys.executable).parent
ENTRY_POINTS = [
    [str(BIN / "tomqueue-worker"), "--app", "tests.jobs"],
    [str(BIN / "tomqueue-deferred")],
    [str(BIN / "tomqueue"), "jobs"],
]


def run_bare(argv, cwd=ROOT, **env):
    """Run a console script with only the given TOMQUEUE_* settings; no server is needed,
    since each of these fails before it connects to anything."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TOMQUEUE_")}
    return subprocess.run(
        argv,
        env=base | {"PYTHONPATH": str(ROOT)} | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("argv", ENTRY_POINTS, ids=lambda argv: Path(argv[0]).name)
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"TOMQUEUE_SWEEP_INTERVAL": "nan"},
            "error: TOMQUEUE_SWEEP_INTERVAL must be a finite number of seconds greater than 0 "
            "(at most 86400), got 'nan'",
        ),
        ({"TOMQUEUE_LEASE_TIMEOUT": "-1"}, "error: TOMQUEUE_LEASE_TIMEOUT must be"),
        ({"TOMQUEUE_MAX_CRASHES": "0"}, "error: TOMQUEUE_MAX_CRASHES must be a whole number"),
        (
            {"TOMQUEUE_DATABASE_URL": "postgresql+psycopg2://u:hunter2@127.0.0.1/x"},
            "error: database_url (TOMQUEUE_DATABASE_URL) uses 'postgresql+psycopg2'",
        ),
    ],
    ids=["nan", "negative", "max-crashes", "psycopg2"],
)
def test_a_process_with_a_bad_setting_exits_with_one_line(argv, env, expected):
    result = run_bare(argv, **env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "hunter2" not in result.stderr


def test_a_bad_horizon_flag_exits_with_one_line():
    result = run_bare([str(BIN / "tomqueue-deferred"), "--horizon", "nan"])
    assert result.returncode == 1
    assert result.stderr.startswith("error: deferred_horizon must be a finite number"), (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_app_modules_come_from_pythonpath_not_the_current_directory(tmp_path):
    (tmp_path / "cwd_only_jobs.py").write_text("import tomqueue\n")
    argv = [str(BIN / "tomqueue-worker"), "--app", "cwd_only_jobs"]
    # a bad setting stops the worker right after the import, before it connects anywhere
    refused = run_bare(argv, cwd=tmp_path, TOMQUEUE_SWEEP_INTERVAL="nan")
    assert refused.returncode == 2, refused.stderr
    assert "cannot import --app cwd_only_jobs" in refused.stderr
    assert "PYTHONPATH" in refused.stderr
    imported = run_bare(argv, cwd=tmp_path, PYTHONPATH=str(tmp_path), TOMQUEUE_SWEEP_INTERVAL="nan")
    assert imported.returncode == 1
    assert imported.stderr.startswith("error: TOMQUEUE_SWEEP_INTERVAL"), imported.stderr
