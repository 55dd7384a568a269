"""deploy/'s shell scripts pass shellcheck (scripts/test lints scripts/ only)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import DEPLOY

SCRIPTS = [DEPLOY / "scripts" / "minikube", DEPLOY / "tests" / "run"]
# Run by `sh` in the Redis pod and by scripts/services; sourced by MariaDB's entrypoint, which runs
# an executable *.sh instead of sourcing it (and then it could not call docker_process_sql).
DATA = DEPLOY / "k8s" / "base" / "data"
RUN_BY_SH = [DATA / "redis-acl.sh"]
SOURCED = [DATA / "mysql-accounts.sh"]


@pytest.mark.parametrize("script", SCRIPTS + RUN_BY_SH + SOURCED, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_shellcheck(script):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (deploy/tests/run installs it)")
    if script in SCRIPTS:
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
    if script in SOURCED:
        assert not script.stat().st_mode & 0o111, f"{script} must not be executable: the entrypoint would run it, not source it"
    result = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_redis_acl_renders_every_user_with_a_hashed_password_and_no_default_login(tmp_path):
    """redis-acl.sh, as the Redis pod and scripts/services run it: one line per user of
    redis-users.conf, each `reset on #<sha256>` and its rules with the prefix filled in; the default
    user off; no password in clear; a missing password or a strange prefix stops it."""
    import hashlib
    import re

    users = [line.split()[0] for line in (DATA / "redis-users.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    env = {f"REDIS_PASSWORD_{u.removeprefix('vid2mp3-').upper().replace('-', '_')}": f"pw-{u}" for u in users}
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run(["sh", str(DATA / "redis-acl.sh")], env={**env, "REDIS_KEY_PREFIX": "app1:"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "user default reset off"
    assert [line.split()[1] for line in lines[1:]] == users
    for line, user in zip(lines[1:], users):
        digest = hashlib.sha256(f"pw-{user}".encode()).hexdigest()
        assert line.startswith(f"user {user} reset on #{digest} "), line
        assert f"pw-{user}" not in line
        assert "{prefix}" not in line
    assert re.search(r"~app1:progress:\*", result.stdout)

    missing = dict(env)
    missing.pop("REDIS_PASSWORD_GATEWAY")
    result = subprocess.run(["sh", str(DATA / "redis-acl.sh")], env=missing, capture_output=True, text=True)
    assert result.returncode != 0 and "REDIS_PASSWORD_GATEWAY" in result.stderr
    result = subprocess.run(["sh", str(DATA / "redis-acl.sh")], env={**env, "REDIS_KEY_PREFIX": "a*b"},
                            capture_output=True, text=True)
    assert result.returncode != 0 and "REDIS_KEY_PREFIX" in result.stderr


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
