"""deploy/ checked with what this machine has: the compose file as Compose reads it, the Dockerfile's
promises (non-root, no build tools, a health check, every package copied), the wheel the image installs
(templates and static files inside), the systemd units by `systemd-analyze verify`, and the nginx
configuration by `nginx -t`. The processes themselves run in tests/deploy/test_topology.py."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from switchboard.settings import Settings
from tests.deploy.deploy_files import (
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    NGINX,
    SYSTEMD,
    MissingVariable,
    compose,
    compose_variables,
    environment_of,
    nginx_for_this_machine,
    unit_for_this_machine,
)

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {"POSTGRES_PASSWORD": "s3cret", "SWITCHBOARD_HOSTNAME": "switchboard.example.org"}
SWITCHBOARD_SERVICES = ("migrate", "web", "worker")
KNOWN_SETTINGS = {f"SWITCHBOARD_{name.upper()}" for name in Settings.model_fields}


def test_compose_runs_a_one_shot_migrate_then_two_web_and_two_workers_behind_the_proxy() -> None:
    services = compose(VARIABLES)["services"]
    assert set(services) == {"postgres", "migrate", "web", "worker", "proxy"}
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["migrate"]["command"] == ["switchboard", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker"):
        assert services[name]["deploy"]["replicas"] == 2
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert services[name]["restart"] == "unless-stopped"
    assert services["web"]["command"][:2] == ["switchboard", "serve"]
    assert services["worker"]["command"] == ["switchboard", "worker"]
    assert "ports" not in services["web"], "only the proxy is published"
    assert services["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert sorted(services["proxy"]["ports"]) == ["443:443", "80:80"]
    assert services["worker"]["healthcheck"] == {"disable": True}, (
        "a worker has no port for the image's check"
    )


def test_every_switchboard_process_is_production_on_postgresql_with_known_settings_only() -> None:
    services = compose(VARIABLES)["services"]
    for name in SWITCHBOARD_SERVICES:
        service = services[name]
        environment = environment_of(service)
        assert environment["SWITCHBOARD_ENVIRONMENT"] == "production"
        assert environment["SWITCHBOARD_SANDBOX"] == "0"
        assert environment["SWITCHBOARD_WORKER_IN_PROCESS"] == "0"
        assert environment["SWITCHBOARD_DATABASE_URL"] == (
            "postgresql+asyncpg://switchboard:s3cret@postgres:5432/switchboard"
        )
        assert environment["SWITCHBOARD_PUBLIC_URL"] == "https://switchboard.example.org"
        unknown = set(environment) - KNOWN_SETTINGS
        assert not unknown, f"{name} sets settings Switchboard does not have: {sorted(unknown)}"
        assert service["env_file"] == [{"path": "switchboard.env", "required": True}]
        assert service["stop_grace_period"] == "60s"
        Settings.model_validate(
            {key.removeprefix("SWITCHBOARD_").lower(): value for key, value in environment.items()}
        )


def test_compose_refuses_to_start_without_its_secrets() -> None:
    for missing in VARIABLES:
        with pytest.raises(MissingVariable, match=missing):
            compose({name: value for name, value in VARIABLES.items() if name != missing})
    assert compose_variables(COMPOSE.read_text()) <= {*VARIABLES, "SWITCHBOARD_TLS_DIR"}


def test_the_image_is_small_non_root_checked_and_carries_every_package() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2, "a build stage and a final stage"
    final = stages[-1]
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|git)\b", final), "no build tools in the image"
    assert "COPY --from=build /opt/switchboard /opt/switchboard" in final
    assert re.search(r"^USER switchboard$", final, flags=re.M)
    assert "useradd --system --uid 10001" in final
    assert re.search(r"^HEALTHCHECK .*", final, flags=re.M) and "/healthz" in final
    assert 'CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000"]' in final
    copied = set(re.findall(r"^COPY (\w+) \./\1$", stages[0], flags=re.M))
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert copied == packages, "the image must copy every package pyproject.toml installs"


@pytest.mark.slow
def test_the_wheel_the_image_installs_holds_every_template_and_static_file(tmp_path: Path) -> None:
    """Builds from exactly what the Dockerfile copies into its build stage, as `docker build` would."""
    source = tmp_path / "src"
    source.mkdir()
    build_stage = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1]
    for line in re.findall(r"^COPY (.+)$", build_stage, flags=re.M):
        *names, _target = line.split()
        for name in names:
            origin = ROOT / name
            if origin.is_dir():
                shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("switchboard-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    needed = {
        str(path.relative_to(ROOT))
        for package in ("api", "bot", "domain", "providers", "reports", "storage", "switchboard")
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    missing = sorted(needed - inside)
    assert not missing, f"pip install . leaves out {missing[:10]}"


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    switchboard = str(Path(sys.executable).with_name("switchboard"))
    units = sorted(SYSTEMD.iterdir())
    assert {unit.name for unit in units} == {
        "switchboard-web@.service",
        "switchboard-worker@.service",
        "switchboard.target",
        "switchboard-backup.service",
        "switchboard-backup.timer",
    }
    for unit in units:
        text = unit.read_text()
        if unit.suffix == ".service":
            for hardening in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "UMask=0077"):
                assert hardening in text, f"{unit.name} lacks {hardening}"
        if unit.name in ("switchboard-web@.service", "switchboard-worker@.service"):
            for hardening in (
                "DynamicUser=yes",
                "ProtectSystem=strict",
                "NoNewPrivileges=yes",
                "ExecStartPre=/opt/switchboard/bin/switchboard migrate",
                # systemd's 90 s start timeout would kill a long schema upgrade half-way, again and again.
                "TimeoutStartSec=1h",
                "KillSignal=SIGTERM",
            ):
                assert hardening in text, f"{unit.name} lacks {hardening}"
        (tmp_path / unit.name).write_text(unit_for_this_machine(text, switchboard))
    # Instances as the target starts them.
    for template, instance in (("switchboard-web@.service", "8001"), ("switchboard-worker@.service", "1")):
        name = template.replace("@.", f"@{instance}.")
        (tmp_path / name).write_text((tmp_path / template).read_text())
    checked = [
        str(tmp_path / name)
        for name in (
            "switchboard-web@8001.service",
            "switchboard-worker@1.service",
            "switchboard.target",
            "switchboard-backup.service",
            "switchboard-backup.timer",
        )
    ]
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *checked], capture_output=True, text=True, timeout=60
    )
    # Unknown keys are only warnings (exit 0), so any word on stderr fails the check too.
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


def test_the_nightly_backup_units_command_line_makes_a_dated_backup(tmp_path: Path) -> None:
    """The backup unit's ExecStart= as systemd would run it ($$ and %% unescaped, the settings file's
    environment), with this checkout's switchboard, a SQLite database, and a folder here for the backups."""
    unit = (SYSTEMD / "switchboard-backup.service").read_text()
    assert "StateDirectory=switchboard switchboard-backups" in unit
    timer = (SYSTEMD / "switchboard-backup.timer").read_text()
    assert "OnCalendar=" in timer and "Persistent=true" in timer
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).removeprefix(
        "ExecStart="
    )
    command = unit_for_this_machine(start, str(Path(sys.executable).with_name("switchboard")))
    command = command.replace("/var/lib/switchboard-backups", str(tmp_path / "backups"))
    command = command.replace("$$", "$").replace("%%", "%")
    (tmp_path / "backups").mkdir()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_API_TOKEN": "backup-test-token-0123456789",
        "SWITCHBOARD_SESSION_SECRET": "backup-test-secret-0123456789abcdef",
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    made = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr + made.stdout
    today = subprocess.run(["date", "+%F"], capture_output=True, text=True, check=True).stdout.strip()
    [first] = [path.name for path in (tmp_path / "backups").iterdir()]
    assert re.fullmatch(rf"{today}-\d{{6}}\.dump", first), first
    # A backup taken by hand later the same day is a file of its own (a backup never overwrites one).
    time.sleep(1.1)
    again = subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr + again.stdout
    assert len(list((tmp_path / "backups").iterdir())) == 2


def test_the_nginx_configuration_passes_nginx_t(tmp_path: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (CI installs nginx-light)")
    certificate, key = self_signed_certificate(tmp_path)
    main = nginx_for_this_machine(
        tmp_path,
        web_ports=[18001, 18002],
        http_port=18080,
        https_port=18443,
        certificate=certificate,
        key=key,
    )
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in NGINX.read_text(), (
        "never the client's own claim"
    )
    tested = subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stderr
    text = NGINX.read_text()
    for path in (
        "location /webhooks/",
        "location /slack/",
        "location = /widget/files",
        "location ^~ /metrics",
    ):
        assert path in text


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "fullchain.pem", folder / "privkey.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return certificate, key


def test_the_production_settings_template_names_real_settings_and_the_forced_ones_only_as_forced() -> None:
    template = (DEPLOY / "switchboard.env.example").read_text()
    values = dict(line.split("=", 1) for line in template.splitlines() if line and not line.startswith("#"))
    assert set(values) <= KNOWN_SETTINGS, sorted(set(values) - KNOWN_SETTINGS)
    # The units' Environment= lines set these; the settings file, read after them, would undo that.
    assert not set(values) & {"SWITCHBOARD_LOG_FORMAT", "SWITCHBOARD_WORKER_METRICS_ADDRESS"}
    # The units and compose.yaml force these; the file may say them only as they are forced (so that
    # `switchboard --env-file` run by hand on the host is production too), never otherwise.
    assert values.get("SWITCHBOARD_ENVIRONMENT") == "production"
    assert values.get("SWITCHBOARD_SANDBOX") == "0"
    assert "SWITCHBOARD_WORKER_IN_PROCESS" not in values
    for unit in ("switchboard-web@.service", "switchboard-worker@.service"):
        start = next(
            line for line in (SYSTEMD / unit).read_text().splitlines() if line.startswith("ExecStart=")
        )
        assert start.startswith(
            "ExecStart=/usr/bin/env SWITCHBOARD_ENVIRONMENT=production SWITCHBOARD_SANDBOX=0"
        )


def test_production_refuses_empty_tokens() -> None:
    settings = Settings(environment="production", sandbox=False, api_token="", session_secret="")
    with pytest.raises(Exception, match="SWITCHBOARD_API_TOKEN is empty") as refused:
        settings.check_production_ready()
    assert "SWITCHBOARD_SESSION_SECRET is empty" in str(refused.value)
