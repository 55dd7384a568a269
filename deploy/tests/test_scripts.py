"""deploy/'s shell scripts pass shellcheck (scripts/test lints scripts/ only)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import DEPLOY

SCRIPTS = [DEPLOY / "scripts" / "minikube", DEPLOY / "tests" / "run", DEPLOY / "images" / "build"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_shellcheck(script):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (deploy/tests/run installs it)")
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    result = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_runbook_writes_the_secret_keys_the_example_lists():
    script = (DEPLOY / "scripts" / "minikube").read_text()
    heredoc = script.split('cat >"$SECRETS_ENV" <<EOF\n', 1)[1].split("\nEOF\n", 1)[0]
    written = [line.split("=", 1)[0] for line in heredoc.splitlines()]
    for overlay in ("minikube", "production"):
        example = [
            line.split("=", 1)[0]
            for line in (DEPLOY / "k8s" / "overlays" / overlay / "secrets.env.example").read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert sorted(written) == sorted(example), overlay
