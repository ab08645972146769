"""Reading deploy/ as Docker Compose, nginx and systemd would: shared by the deployment tests."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = DEPLOY / "nginx" / "switchboard.conf"
SYSTEMD = DEPLOY / "systemd"
DOCKERFILE = DEPLOY / "Dockerfile"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<op>:\?|:-)(?P<arg>[^}]*))?\}")


class MissingVariable(KeyError):
    pass


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}`, as `docker compose config` fills them."""

    def fill(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = variables.get(name, "")
        if value:
            return value
        if op == ":-":
            return arg
        raise MissingVariable(f"{name}: {arg or 'not set'}")

    return _VARIABLE.sub(fill, text)


def compose(variables: dict[str, str]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), variables))
    return loaded


def compose_variables(text: str) -> set[str]:
    return {match.group("name") for match in _VARIABLE.finditer(text)}


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(name): str(value) for name, value in environment.items()}


def sandbox_env_file(sandbox: int, smtp: int, *, api_token: str, session_secret: str) -> dict[str, str]:
    """What deploy/switchboard.env holds on a real host, here pointing at the sandbox on these ports, with
    its secrets (the environment is then `test`: production refuses them)."""
    sandbox_url = f"http://127.0.0.1:{sandbox}"
    return {
        "SWITCHBOARD_API_TOKEN": api_token,
        "SWITCHBOARD_SESSION_SECRET": session_secret,
        "SWITCHBOARD_SANDBOX_PORT": str(sandbox),
        "SWITCHBOARD_SANDBOX_SMTP_PORT": str(smtp),
        "SWITCHBOARD_TWILIO_BASE_URL": sandbox_url,
        "SWITCHBOARD_WHATSAPP_BASE_URL": sandbox_url,
        "SWITCHBOARD_TELEGRAM_BASE_URL": sandbox_url,
        "SWITCHBOARD_SLACK_BASE_URL": sandbox_url + "/slack/api",
        "SWITCHBOARD_SMTP_HOST": "127.0.0.1",
        "SWITCHBOARD_SMTP_PORT": str(smtp),
        "SWITCHBOARD_LOG_LEVEL": "INFO",
    }


def unit_for_this_machine(text: str, switchboard: str) -> str:
    """A unit file as it would be installed, pointing at this checkout's `switchboard`."""
    return text.replace("/opt/switchboard/bin/switchboard", switchboard)


GUIDE = DEPLOY.parent / "docs" / "operations.md"


def host_upstream(conf: str, web_ports: list[int]) -> str:
    """The upstream as docs/operations.md's `sed` rewrites it for the systemd units (ports 8001 and 8002), run
    here on these ports instead."""
    found = re.search(
        r"\| sed -e 's\|(?P<pattern>[^|]+)\|(?P<replacement>[^|]+)\|' -e '/(?P<deleted>[^/]+)/d'",
        GUIDE.read_text(),
    )
    assert found, "docs/operations.md no longer shows the sed that points nginx at the web units"
    replacement = found["replacement"]
    for default_port, port in zip(("8001", "8002"), web_ports, strict=True):
        assert f"127.0.0.1:{default_port}" in replacement, replacement
        replacement = replacement.replace(f"127.0.0.1:{default_port}", f"127.0.0.1:{port}")
    # As sed does, line by line: the upstream replaced, Docker's resolver line deleted (comments untouched).
    conf = re.sub(found["pattern"], replacement, conf, flags=re.M)
    conf = re.sub(found["deleted"] + ".*\n?", "", conf, flags=re.M)
    assert not re.search(r"^\s*server web:8000", conf, flags=re.M), "the guide's sed misses the upstream"
    assert not re.search(r"^resolver ", conf, flags=re.M), "the guide's sed leaves Docker's resolver"
    assert "#     | sed -e 's|^    server web:8000" in conf, "the sed garbles the comment that shows it"
    return conf


def nginx_for_this_machine(
    folder: Path, *, web_ports: list[int], http_port: int, https_port: int, certificate: Path, key: Path
) -> Path:
    """deploy/nginx/switchboard.conf with the changes docs/operations.md tells a host's operator to make
    (hostname filled in, the web units' ports as the upstream), on free ports and in a folder of its own; returns
    the main configuration file that includes it."""
    conf = NGINX.read_text().replace("${SWITCHBOARD_HOSTNAME}", "localhost")
    conf = host_upstream(conf, web_ports)
    conf = re.sub(r"^\s*listen \[::\].*$", "", conf, flags=re.M)  # the test machine may have no IPv6
    conf = re.sub(r"^resolver .*$", "", conf, flags=re.M)  # Docker's DNS is not here (nor needed: addresses)
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    conf = conf.replace("/etc/nginx/tls/fullchain.pem", str(certificate))
    conf = conf.replace("/etc/nginx/tls/privkey.pem", str(key))
    conf = conf.replace("/var/www/acme", str(folder / "acme"))
    (folder / "acme").mkdir(exist_ok=True)
    (folder / "switchboard.conf").write_text(conf)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = folder / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\nworker_processes 1;\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n    access_log {folder / 'access.log'};\n{temp_paths}\n"
        + f"    include {folder / 'switchboard.conf'};\n}}\n"
    )
    return main
