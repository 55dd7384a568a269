"""deploy/compose.yaml, checked as data (docker compose is not installed here; when it is, its own
`config` check runs too)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from conftest import DEPLOY

COMPOSE = DEPLOY / "compose.yaml"
EXAMPLE = DEPLOY / "compose.env.example"


def load():
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_their_files_exist():
    compose = load()
    assert {"mysql", "rabbitmq", "redis", "mongodb", "converter", "migrate"} <= set(compose["services"])
    for name, svc in compose["services"].items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert (context / svc["build"]["dockerfile"]).is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name} mounts missing {source}"
            else:
                assert source in compose.get("volumes", {}), f"{name}: undeclared volume {source}"
        for dep in svc.get("depends_on", {}):
            assert dep in compose["services"], f"{name} depends on unknown {dep}"


def test_ports_are_bound_to_loopback():
    for name, svc in load()["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_every_required_variable_is_in_the_example():
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    example = {line.split("=", 1)[0] for line in EXAMPLE.read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert required and required == example, f"required {sorted(required)}, example {sorted(example)}"
    assert used <= example


def test_docker_compose_accepts_it():
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed; compose.yaml checked as data only")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(EXAMPLE), "--profile", "tools", "config", "-q"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
