"""deploy/: the Procfile, the systemd units and the Kubernetes manifests that
docs/deployment.md describes, read and then run for real.

Each command line is started as written, with only what a deployment has and a test
cannot changed, in one place (``localise``): the install path of the venv
(/srv/myapp/venv/bin -> this venv), the job module (myapp.jobs -> tests.jobs), the ports
(-> free ones) and the settings (-> this test's database, broker and prefix). Then the
test does what an init system or Kubernetes would: waits for the process to work (a job
runs, an HTTP answer), sends SIGTERM, and checks the exit within the stop timeout the
file gives.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pika
import psycopg
import pytest
import yaml

import tomqueue
from tests.conftest import ROOT, libpq, wait_until
from tests.jobs import Record, StartEnd
from tomqueue.cli import main as tomqueue_cli
from tomqueue.deferred.cli import main as deferred_cli
from tomqueue.settings import _DURATION_ENV_NAMES, _ENV_NAMES, _FLAG_ENV_NAMES
from tomqueue.worker.cli import main as worker_cli

if TYPE_CHECKING:
    from tests.conftest import TestEnv

pytestmark = pytest.mark.integration

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
VENV_BIN = Path(sys.executable).parent
SCRIPTS = {
    "tomqueue": tomqueue_cli,
    "tomqueue-worker": worker_cli,
    "tomqueue-deferred": deferred_cli,
}
TOKEN = "deployment-test-token-0123456789"
KNOWN_SETTINGS = {
    *_ENV_NAMES,
    *_FLAG_ENV_NAMES,
    *_DURATION_ENV_NAMES,
    "TOMQUEUE_MAX_CRASHES",
    "TOMQUEUE_LOG_FORMAT",
    "TOMQUEUE_DASHBOARD_TOKEN",
}
CREDENTIALS = ("TOMQUEUE_DATABASE_URL", "TOMQUEUE_AMQP_URL", "TOMQUEUE_DASHBOARD_TOKEN")


# -- reading the files ---------------------------------------------------------------------


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values, in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path.name}: keep each setting on one line"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: cannot read {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: Mapping[str, Mapping[str, list[str]]], key: str) -> str:
    values = unit["Service"][key]
    assert len(values) == 1, f"{key} given {len(values)} times"
    return values[0]


def read_env_file(path: Path) -> dict[str, str]:
    """VAR=value lines (an EnvironmentFile, unquoted values), comments skipped."""
    pairs = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def read_procfile() -> dict[str, str]:
    lines = {}
    for raw in (DEPLOY / "Procfile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", raw)  # honcho's and foreman's rule
        if match:
            lines[match[1]] = match[2]
        else:
            assert not raw.strip() or raw.startswith("#"), f"Procfile: cannot read {raw!r}"
    return lines


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object in deploy/kubernetes (the Secret example included)."""
    objects = {}
    paths = [*sorted(KUBERNETES.glob("*.yaml")), KUBERNETES / "secret.yaml.example"]
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in objects, f"{key} defined twice"
            objects[key] = document
    return objects


def container(objects: Mapping[tuple[str, str], Any], kind: str, name: str) -> dict[str, Any]:
    (only,) = objects[(kind, name)]["spec"]["template"]["spec"]["containers"]
    return dict(only)


def flag(argv: list[str], name: str) -> str:
    """The value of ``--name VALUE`` in ``argv``."""
    assert argv.count(name) == 1, f"{name} in {argv}"
    return argv[argv.index(name) + 1]


def parsed(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``argv`` with the real command's own parser (an unknown flag or a bad value
    raises click's error), without running it; returns the command's name and params."""
    script = Path(argv[0]).name
    assert script in SCRIPTS, f"{argv[0]} is not one of tomqueue's console scripts"
    assert (VENV_BIN / script).exists(), f"{script} is not installed in {VENV_BIN}"
    command, args = SCRIPTS[script], argv[1:]
    if isinstance(command, click.Group):
        assert args and not args[0].startswith("-"), f"{argv}: no subcommand"
        parent = command.make_context(script, [], resilient_parsing=True)
        sub = command.get_command(parent, args[0])
        assert sub is not None, f"{argv}: no such subcommand"
        context = sub.make_context(args[0], args[1:], parent=parent)
        return f"{script} {args[0]}", dict(context.params)
    return script, dict(command.make_context(script, args).params)


# -- running them ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def localise(argv: list[str], ports: Mapping[str, int] | None = None) -> list[str]:
    """What differs between a deployment and this test, and nothing else."""
    out = []
    for arg in argv:
        arg = arg.replace("/srv/myapp/venv/bin/", f"{VENV_BIN}/")
        out.append("tests.jobs" if arg == "myapp.jobs" else arg)
    for name, port in (ports or {}).items():
        out[out.index(name) + 1] = str(port)
    if out[0] in SCRIPTS:  # a bare console script, found on the image's PATH
        out[0] = str(VENV_BIN / out[0])
    return out


def base_environ() -> dict[str, str]:
    """The test runner's environment without its own tomqueue settings, this venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOMQUEUE_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def settings_for(tq: TestEnv, given: Mapping[str, str]) -> dict[str, str]:
    """The settings a file gives, with the credentials and prefix this test's own."""
    ours = {
        "TOMQUEUE_DATABASE_URL": tq.database_url,
        "TOMQUEUE_AMQP_URL": tq.amqp_url,
        "TOMQUEUE_PREFIX": tq.prefix,
        "TOMQUEUE_DASHBOARD_TOKEN": TOKEN,
    }
    return {key: ours.get(key, value) for key, value in given.items()}


def use_the_same_queues(env: Mapping[str, str]) -> None:
    """This test process enqueues too: declare the queues as the deployment does (a queue
    declared classic cannot be declared again as a quorum queue, nor the reverse)."""
    quorum = env.get("TOMQUEUE_QUORUM_QUEUES", "").lower() in {"1", "true", "yes", "on"}
    tomqueue.configure(quorum_queues=quorum)


def start(tq: TestEnv, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, cwd=ROOT, env=dict(env), start_new_session=True)
    tq.processes.append(proc)  # killed at teardown if a check failed first
    return proc


def run_to_end(argv: list[str], env: Mapping[str, str], timeout: float = 120) -> None:
    done = subprocess.run(argv, cwd=ROOT, env=dict(env), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"


def stop(proc: subprocess.Popen[bytes], within: float, group: bool = False) -> tuple[int, float]:
    """SIGTERM, as systemd or Kubernetes sends it (to the whole process group when a
    Procfile runner does); the exit code and how long it took. Fails after ``within``."""
    began = time.monotonic()
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{proc.args} still running {within}s after SIGTERM")
    return code, time.monotonic() - began


def http_status(url: str, token: str | None = None) -> int | None:
    """The status of a GET, or None while nothing answers yet (redirects not followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def released_by_a_deferred_manager(text: str) -> bool:
    """The manager's histogram of release lateness has counted a release."""
    counts = re.findall(r"^tomqueue_release_lateness_seconds_count\{[^}]*\} (\S+)$", text, re.M)
    return any(float(count) >= 1 for count in counts)


def enqueue_now_and_later(tq: TestEnv, label: str) -> None:
    tomqueue.enqueue(Record(f"{label}-now"))
    tomqueue.enqueue(Record(f"{label}-later"), run_at=datetime.now(UTC) + timedelta(seconds=2))
    tq.flush_announcements()


def check_host_once(tq: TestEnv, host: str) -> tuple[int, str]:
    done = subprocess.run([str(VENV_BIN / "tomqueue"), "workers", "--check-host", host],
                          cwd=ROOT, env=tq.environ, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def lease_address(tq: TestEnv) -> str:
    """The address PostgreSQL sees this machine's sessions come from (127.0.0.1 when the
    test database is reached over loopback), read from a live worker's lease."""
    done = tq.cli("workers", "--json")
    found = [w for w in json.loads(done.stdout or "[]") if w["alive"] and w["client_addr"]]
    return str(found[0]["client_addr"]) if found else ""


def lease_host(tq: TestEnv) -> str:
    """The host a live worker's lease names (its session's application_name), or ''."""
    done = tq.cli("workers", "--json")
    found = [w for w in json.loads(done.stdout or "[]") if w["alive"] and w["host"]]
    return str(found[0]["host"]) if found else ""


# -- the lease check: tomqueue workers --check-host ------------------------------------------


def test_the_lease_check_passes_while_a_worker_lives_and_fails_once_it_is_killed(tq):
    worker = tq.spawn("worker")
    here = socket.gethostname()
    assert wait_until(lambda: lease_host(tq), timeout=30, message="the worker's lease") == here
    code, said = wait_until(
        lambda: (r := check_host_once(tq, here))[0] == 0 and r,
        timeout=30,
        message="the check to pass",
    )
    assert said.strip().startswith(f"1 live worker lease(s) on {here}: {here} pid:{worker.pid} ")
    assert len(said.strip().splitlines()) == 1
    # by the address PostgreSQL sees, for hosts without a stable name
    address = lease_address(tq)
    assert check_host_once(tq, address)[0] == 0

    code, said = check_host_once(tq, "another-pod")
    assert code == 1, said
    assert said.strip() == f"no live worker lease on another-pod; live leases are on {here}"
    code, said = check_host_once(tq, "192.0.2.1")  # TEST-NET-1: no worker there
    assert code == 1, said
    usage = tq.cli("workers", "--check-host", here, "--json")
    assert usage.returncode == 2, usage.stdout + usage.stderr

    worker.kill()  # SIGKILL: its lease ends with its database session
    worker.wait()
    code, said = wait_until(
        lambda: (r := check_host_once(tq, here))[0] == 1 and r,
        timeout=30,
        message="the check to fail once the worker is gone",
    )
    assert said.strip() == f"no live worker lease on {here}; no lease is held"


# -- systemd ---------------------------------------------------------------------------------

SERVICE_UNITS = [
    "tomqueue-worker.service",
    "tomqueue-deferred.service",
    "tomqueue-dashboard.service",
]


@pytest.mark.parametrize("name", [*SERVICE_UNITS, "tomqueue-migrate.service"])
def test_each_systemd_unit_names_a_real_command_and_no_credentials(name):
    text = (UNITS / name).read_text()
    unit = read_unit(UNITS / name)
    argv = shlex.split(one(unit, "ExecStart"))
    assert argv[0].startswith("/srv/myapp/venv/bin/")
    parsed(argv)  # the real parser accepts every flag and value
    assert unit["Service"]["EnvironmentFile"][0] == "/etc/tomqueue/tomqueue.env"
    for setting in unit["Service"].get("Environment", []):
        assert not setting.startswith("TOMQUEUE_"), "settings belong in the EnvironmentFile"
    assert "://" not in text and "CHANGE-ME" not in text and "TOKEN=" not in text
    if name == "tomqueue-migrate.service":
        assert one(unit, "Type") == "oneshot" and "Install" not in unit  # started by hand
        return
    assert one(unit, "KillSignal") == "SIGTERM"
    assert one(unit, "Restart") in {"always", "on-failure"}
    assert float(one(unit, "RestartSec")) > 0
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_worker_unit_stops_within_its_timeout_whatever_the_jobs():
    unit = read_unit(UNITS / "tomqueue-worker.service")
    command, params = parsed(shlex.split(one(unit, "ExecStart")))
    assert command == "tomqueue-worker"
    # --shutdown-timeout bounds a stop only under the supervisor (--processes above 1)
    assert params["processes"] > 1
    assert float(one(unit, "TimeoutStopSec")) >= params["shutdown_timeout"] + 10
    # SIGTERM to the supervisor alone: it signals its workers itself, and the final
    # SIGKILL still reaches every process of the unit
    assert one(unit, "KillMode") == "mixed"


def test_the_environment_files_hold_known_settings_only():
    shared = read_env_file(UNITS / "tomqueue.env.example")
    dashboard = read_env_file(UNITS / "dashboard.env.example")
    assert set(shared) | set(dashboard) <= KNOWN_SETTINGS
    assert {"TOMQUEUE_DATABASE_URL", "TOMQUEUE_AMQP_URL", "TOMQUEUE_PREFIX"} <= set(shared)
    assert set(dashboard) == {"TOMQUEUE_DASHBOARD_TOKEN"}  # the workers never see it
    assert len(shared["TOMQUEUE_AMQP_URL"].split(",amqp://")) == 3  # the cluster's nodes
    dashboard_unit = read_unit(UNITS / "tomqueue-dashboard.service")
    assert dashboard_unit["Service"]["EnvironmentFile"] == [
        "/etc/tomqueue/tomqueue.env",
        "/etc/tomqueue/dashboard.env",
    ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", [*SERVICE_UNITS, "tomqueue-migrate.service"])
def test_systemd_analyze_verifies_each_unit(name, tmp_path):
    """systemd's own check: every key known, ExecStart executable (this venv's)."""
    text = (UNITS / name).read_text().replace("/srv/myapp/venv/bin/", f"{VENV_BIN}/")
    (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def unit_command(
    tq: TestEnv, name: str, ports: Mapping[str, int] | None = None
) -> tuple[list[str], dict[str, str], float]:
    """A unit's ExecStart, environment and TimeoutStopSec, as systemd would use them here."""
    unit = read_unit(UNITS / name)
    env = base_environ()
    for setting in unit["Service"].get("Environment", []):
        key, value = setting.split("=", 1)
        env[key] = str(ROOT) if key == "PYTHONPATH" else value
    for path in unit["Service"]["EnvironmentFile"]:
        example = UNITS / (Path(path).name + ".example")
        env.update(settings_for(tq, read_env_file(example)))
    stop_timeout = float(unit["Service"].get("TimeoutStopSec", ["90"])[0])
    return localise(shlex.split(one(unit, "ExecStart")), ports), env, stop_timeout


def test_the_systemd_units_run_jobs_and_stop_cleanly_on_sigterm(tq):
    metrics_ports = {"worker": free_port(), "deferred": free_port()}
    web = free_port()
    migrate, env, _ = unit_command(tq, "tomqueue-migrate.service")
    run_to_end(migrate, env)  # the upgrade procedure: migrate first
    use_the_same_queues(env)

    argv, env, worker_stop = unit_command(
        tq, "tomqueue-worker.service", {"--metrics-port": metrics_ports["worker"]}
    )
    worker = start(tq, argv, env)
    argv, env, deferred_stop = unit_command(
        tq, "tomqueue-deferred.service", {"--metrics-port": metrics_ports["deferred"]}
    )
    deferred = start(tq, argv, env)
    argv, env, dashboard_stop = unit_command(tq, "tomqueue-dashboard.service", {"--port": web})
    dashboard = start(tq, argv, env)

    enqueue_now_and_later(tq, "systemd")
    wait_until(lambda: tq.count_runs("systemd-now") == 1, timeout=60, message="the worker")
    wait_until(lambda: tq.count_runs("systemd-later") == 1, timeout=60, message="the later job")
    wait_until(lambda: released_by_a_deferred_manager(metrics(metrics_ports["deferred"])),
               timeout=30, message="the deferred manager's release")  # fmt: skip
    assert "tomqueue_jobs_completed_total" in metrics(metrics_ports["worker"])

    base = f"http://127.0.0.1:{web}"
    wait_until(lambda: http_status(f"{base}/login") == 200, timeout=60, message="the dashboard")
    assert http_status(f"{base}/api/stats") == 401  # the token from dashboard.env is required
    assert http_status(f"{base}/api/stats", TOKEN) == 200

    # a job in hand when systemd stops the worker is finished, then the unit exits 0
    job = tomqueue.enqueue(StartEnd("systemd-stop", seconds=2))
    tq.flush_announcements()
    wait_until(lambda: tq.events("systemd-stop") == ["start"], timeout=30, message="the job")
    code, took = stop(worker, within=worker_stop)
    assert code == 0 and took < worker_stop
    assert tq.events("systemd-stop") == ["start", "end"] and tq.job(job) is None

    code, took = stop(deferred, within=deferred_stop)
    assert code == 0, code
    code, took = stop(dashboard, within=dashboard_stop)
    # uvicorn ends by re-raising the SIGTERM after its graceful shutdown: a clean stop
    # for systemd (SIGTERM is one of the signals it counts as success)
    assert code in (0, -signal.SIGTERM), code


# -- the Procfile ----------------------------------------------------------------------------


def test_the_procfile_names_real_commands_and_fits_herokus_stop_window():
    lines = read_procfile()
    assert list(lines) == ["release", "worker", "deferred", "dashboard"]
    for name, line in lines.items():
        parsed(shlex.split(line.replace("${PORT:-8089}", "8089")))
    assert lines["release"] == "tomqueue migrate"
    _, params = parsed(shlex.split(lines["worker"]))
    # Heroku sends SIGKILL 30 s after SIGTERM; the supervisor must be done before
    assert params["processes"] > 1 and params["shutdown_timeout"] <= 25
    honcho = VENV_BIN / "honcho"
    if honcho.exists():
        done = subprocess.run([str(honcho), "-f", str(DEPLOY / "Procfile"), "check"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_the_procfile_lines_run_and_stop_on_sigterm(tq):
    lines = read_procfile()
    env = base_environ()
    env.update(TOMQUEUE_DATABASE_URL=tq.database_url, TOMQUEUE_AMQP_URL=tq.amqp_url,
               TOMQUEUE_PREFIX=tq.prefix, TOMQUEUE_DASHBOARD_TOKEN=TOKEN)  # fmt: skip
    web = free_port()
    env["PORT"] = str(web)

    def shell(name: str) -> list[str]:
        # as a Procfile runner does: through the shell (for ${PORT}), the command exec'd
        return ["sh", "-c", "exec " + lines[name].replace("myapp.jobs", "tests.jobs")]

    run_to_end(shell("release"), env)
    use_the_same_queues(env)
    worker = start(tq, shell("worker"), env)
    deferred = start(tq, shell("deferred"), env)
    dashboard = start(tq, shell("dashboard"), env)
    enqueue_now_and_later(tq, "procfile")
    wait_until(lambda: tq.count_runs("procfile-now") == 1, timeout=60, message="the worker")
    wait_until(lambda: tq.count_runs("procfile-later") == 1, timeout=60, message="the later job")
    wait_until(lambda: http_status(f"http://127.0.0.1:{web}/login") == 200, timeout=60,
               message="the dashboard on $PORT")  # fmt: skip
    # Heroku signals every process of the dyno: the supervisor's workers hear it too
    code, _ = stop(worker, within=30, group=True)
    assert code == 0, code
    assert stop(deferred, within=30, group=True)[0] == 0
    assert stop(dashboard, within=30, group=True)[0] in (0, -signal.SIGTERM)


# -- Kubernetes ------------------------------------------------------------------------------


def test_the_kubernetes_objects_fit_together():
    objects = manifests()
    kinds = sorted(objects)
    assert kinds == [
        ("ConfigMap", "tomqueue-config"),
        ("Deployment", "tomqueue-dashboard"),
        ("Deployment", "tomqueue-deferred"),
        ("Deployment", "tomqueue-worker"),
        ("Job", "tomqueue-migrate"),
        ("Secret", "tomqueue-dashboard"),
        ("Secret", "tomqueue-secrets"),
        ("Service", "tomqueue-dashboard"),
    ]
    config = objects[("ConfigMap", "tomqueue-config")]["data"]
    assert set(config) <= KNOWN_SETTINGS and not set(config) & set(CREDENTIALS)
    assert all(isinstance(value, str) for value in config.values())  # env values are text
    secrets = objects[("Secret", "tomqueue-secrets")]["stringData"]
    assert set(secrets) == {"TOMQUEUE_DATABASE_URL", "TOMQUEUE_AMQP_URL"}
    assert all("CHANGE-ME" in value for value in secrets.values())

    images = set()
    for (kind, name), obj in objects.items():
        if kind not in ("Deployment", "Job"):
            continue
        pod = obj["spec"]["template"]
        if kind == "Deployment":
            assert (
                obj["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
            )
        spec = container(objects, kind, name)
        images.add(spec["image"])
        refs = spec.get("envFrom", [])
        assert {"configMapRef": {"name": "tomqueue-config"}} in refs, name
        assert {"secretRef": {"name": "tomqueue-secrets"}} in refs, name
        parsed([*spec["command"], *spec.get("args", [])])  # real flags, valid values
    assert len(images) == 1, f"one release, one image: {images}"


def test_the_worker_pod_outlives_its_shutdown_timeout_and_probes_its_lease():
    objects = manifests()
    pod = objects[("Deployment", "tomqueue-worker")]["spec"]["template"]["spec"]
    spec = container(objects, "Deployment", "tomqueue-worker")
    command, params = parsed([*spec["command"], *spec["args"]])
    assert command == "tomqueue-worker" and params["processes"] > 1
    assert pod["terminationGracePeriodSeconds"] >= params["shutdown_timeout"] + 10
    probe = spec["livenessProbe"]
    assert probe["exec"]["command"] == [
        "sh", "-c", 'exec tomqueue workers --check-host "$(hostname)"'
    ]  # fmt: skip
    # a probe answers in about a second; a PostgreSQL blip must not restart the workers
    assert (
        probe["timeoutSeconds"] >= 10 and probe["periodSeconds"] * probe["failureThreshold"] >= 60
    )


def test_the_deferred_managers_are_two_and_the_dashboard_is_behind_its_token_and_service():
    objects = manifests()
    assert objects[("Deployment", "tomqueue-deferred")]["spec"]["replicas"] == 2
    pod = objects[("Deployment", "tomqueue-dashboard")]["spec"]["template"]
    spec = container(objects, "Deployment", "tomqueue-dashboard")
    _, params = parsed([*spec["command"], *spec["args"]])
    (token,) = [e for e in spec["env"] if e["name"] == "TOMQUEUE_DASHBOARD_TOKEN"]
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref["key"] in objects[("Secret", ref["name"])]["stringData"]
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports["http"] == params["port"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"] == {"path": "/login", "port": "http"}
    service = objects[("Service", "tomqueue-dashboard")]["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert [p["targetPort"] for p in service["ports"]] == ["http"]
    job = container(objects, "Job", "tomqueue-migrate")
    assert job["command"] == ["tomqueue", "migrate"]


def test_the_kubernetes_containers_run_and_the_liveness_probe_follows_the_lease(tq, tmp_path):
    objects = manifests()
    env = base_environ()
    env.update(settings_for(tq, objects[("ConfigMap", "tomqueue-config")]["data"]))
    env.update(settings_for(tq, objects[("Secret", "tomqueue-secrets")]["stringData"]))
    use_the_same_queues(env)  # the ConfigMap asks for quorum queues
    job = container(objects, "Job", "tomqueue-migrate")
    run_to_end(localise(job["command"]), env)

    worker_spec = container(objects, "Deployment", "tomqueue-worker")
    grace = objects[("Deployment", "tomqueue-worker")]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    worker = start(tq, localise([*worker_spec["command"], *worker_spec["args"]],
                                {"--metrics-port": free_port()}), env)  # fmt: skip
    deferred_spec = container(objects, "Deployment", "tomqueue-deferred")
    deferred = start(tq, localise([*deferred_spec["command"], *deferred_spec["args"]],
                                  {"--metrics-port": free_port()}), env)  # fmt: skip
    web = free_port()
    dashboard_spec = container(objects, "Deployment", "tomqueue-dashboard")
    dashboard_env = {**env, "TOMQUEUE_DASHBOARD_TOKEN": TOKEN}
    dashboard = start(tq, localise([*dashboard_spec["command"], *dashboard_spec["args"]],
                                   {"--port": web}), dashboard_env)  # fmt: skip

    enqueue_now_and_later(tq, "k8s")
    wait_until(lambda: tq.count_runs("k8s-now") == 1, timeout=60, message="the worker")
    wait_until(lambda: tq.count_runs("k8s-later") == 1, timeout=60, message="the later job")
    assert queue_is_quorum(tq, tq.app.topology.queue_for(tomqueue.NORMAL_PRIORITY))
    probe_path = dashboard_spec["livenessProbe"]["httpGet"]["path"]
    wait_until(lambda: http_status(f"http://127.0.0.1:{web}{probe_path}") == 200, timeout=60,
               message="the dashboard's probe")  # fmt: skip

    # the probe exactly as written (`hostname` answers as in a pod: the host's name)
    here = wait_until(lambda: lease_host(tq), timeout=30, message="a lease")
    (tmp_path / "hostname").write_text(f"#!/bin/sh\necho {here}\n")
    (tmp_path / "hostname").chmod(0o755)
    probe_env = {**env, "PATH": f"{tmp_path}{os.pathsep}{env['PATH']}"}
    probe = worker_spec["livenessProbe"]["exec"]["command"]

    def probe_code() -> int:
        done = subprocess.run(probe, cwd=ROOT, env=probe_env, capture_output=True,
                              timeout=worker_spec["livenessProbe"]["timeoutSeconds"])  # fmt: skip
        return done.returncode

    wait_until(lambda: probe_code() == 0, timeout=30, message="the probe to pass")
    code, took = stop(worker, within=grace)
    assert code == 0 and took < grace
    assert probe_code() == 1  # no lease from this "pod" any more
    assert stop(deferred, within=30)[0] == 0
    assert stop(dashboard, within=30)[0] in (0, -signal.SIGTERM)


def queue_is_quorum(tq: TestEnv, name: str) -> bool:
    """Declaring a queue again with other arguments is refused (406): declaring it as a
    quorum queue passes only if it is one."""
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:
            return False
        raise
    finally:
        if connection.is_open:
            connection.close()


# -- what docs/deployment.md claims ------------------------------------------------------------

DOC = ROOT / "docs" / "deployment.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.M | re.S)


def test_every_sql_in_the_guide_runs_on_a_migrated_database(tq):
    """Each SQL block, in a transaction rolled back (ALTER ROLE and ALTER TABLE included)."""
    blocks = doc_blocks("sql")
    assert len(blocks) >= 4
    with psycopg.connect(libpq(tq.database_url)) as conn:
        for block in blocks:
            for statement in filter(str.strip, block.split(";")):
                conn.execute(statement)
        conn.rollback()


def test_the_postgresql_settings_in_the_guide_exist(tq):
    (conf,) = [b for b in doc_blocks("ini") if b.startswith("# postgresql.conf")]
    names = re.findall(r"^([a-z_]+) = ", conf, re.M)
    assert names
    known = {row[0] for row in tq.sql("SELECT name FROM pg_settings")}
    assert set(names) <= known


def test_the_index_table_lists_every_index_the_migrations_create(tq):
    listed = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", DOC.read_text(), re.M))
    names = {name for pair in listed for name in pair if name}
    actual = {
        row[0]
        for row in tq.sql("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'tomqueue%'")
    }
    assert names == actual, f"not in the guide: {actual - names}; no such index: {names - actual}"
    latest = max(p.name[:4] for p in (ROOT / "migrations" / "versions").glob("0*.py"))
    assert f"0001 to {latest}" in DOC.read_text(), (
        f"migration {latest} is new: check the guide's Upgrading section still holds"
    )


def test_the_guides_conversion_to_quorum_queues_loses_no_job(tq):
    """Classic queues with jobs announced on them; then, as the guide says: delete the
    prefix's queues, set TOMQUEUE_QUORUM_QUEUES=1, start a worker, `tomqueue republish`."""
    labels = [f"convert-{n}" for n in range(5)]
    tomqueue.enqueue_many([Record(label) for label in labels], wait_for_broker=True)
    topology = tq.app.topology
    assert not queue_is_quorum(tq, topology.queue_for(tomqueue.NORMAL_PRIORITY))
    connection = pika.BlockingConnection(pika.URLParameters(tq.amqp_url))
    for queue in topology.all_queues():
        connection.channel().queue_delete(queue)
    connection.close()

    env = {**tq.environ, "TOMQUEUE_QUORUM_QUEUES": "1"}
    start(tq, [str(VENV_BIN / "tomqueue-worker"), "--app", "tests.jobs"], env)
    run_to_end([str(VENV_BIN / "tomqueue"), "republish"], env)
    wait_until(lambda: all(tq.count_runs(label) == 1 for label in labels), timeout=60,
               message="every job, once")  # fmt: skip
    assert tq.pending_count() == 0
    assert queue_is_quorum(tq, topology.queue_for(tomqueue.NORMAL_PRIORITY))
