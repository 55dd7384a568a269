"""deploy/'s shell scripts pass shellcheck (scripts/test lints scripts/ only); the runbook's scripts
use nothing that macOS's bash 3.2 or BSD sed lack (what test_minikube_script.py cannot see by running
them: it runs them with GNU bash 5, and a shim cannot look inside a sed script)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import DEPLOY, REPO

SCRIPTS = [
    DEPLOY / "scripts" / "minikube",
    DEPLOY / "scripts" / "overlay",
    DEPLOY / "tests" / "run",
    DEPLOY / "images" / "build",
]
# What a user runs, on Linux or macOS; deploy/tests/run runs in CI only.
RUNBOOK_SCRIPTS = [DEPLOY / "scripts" / "minikube", DEPLOY / "scripts" / "overlay"]

# bash 4+ only (macOS ships bash 3.2): each pattern with what it is.
BASH4_ONLY = {
    r"\b(mapfile|readarray|coproc)\b": "mapfile/readarray/coproc",
    r"\bdeclare\s+-[a-zA-Z]*A": "associative arrays",
    r"\blocal\s+-n\b|\bdeclare\s+-n\b": "namerefs",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(,,|\^\^|,|\^)\}": "case conversion in ${...}",
    r"&>>|\|&": "&>> and |&",
    r"\[\[\s+-v\b": "[[ -v ]]",
    r"\$EPOCHSECONDS|\$EPOCHREALTIME": "$EPOCHSECONDS",
    r"\[-1\]\}": "negative array subscripts",
}
# GNU sed extensions a flag shim cannot see: \+ \? \| \s \w \b in a regex, the I flag, 0,/re/.
GNU_SED = re.compile(r"sed\b[^|;]*'[^']*(\\[+?|swWbB<>`]|/I\b|/[gp]*I[gp]*'|0,/)")
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


def test_the_runbook_scripts_need_no_bash_4():
    """macOS runs `#!/usr/bin/env bash` with its bash 3.2 unless Homebrew's is first on PATH. The
    functions of scripts/lib/common.sh that they call (log, warn, die) are plain; the rest of that file
    is parsed, not run, by them."""
    found = []
    for script in RUNBOOK_SCRIPTS:
        for number, line in enumerate(script.read_text().splitlines(), 1):
            code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
            for pattern, what in BASH4_ONLY.items():
                if re.search(pattern, code):
                    found.append(f"{script.name}:{number}: {what}: {line.strip()}")
    assert found == []


def test_the_bash_4_lint_finds_what_it_looks_for():
    samples = ["mapfile -t a < f", "declare -A map", "local -n ref=x", 'echo "${name,,}"', "cmd |& tee", "[[ -v x ]]"]
    for sample in samples:
        assert any(re.search(p, sample) for p in BASH4_ONLY), sample


def test_sed_in_the_runbook_scripts_is_posix():
    found = [f"{s.name}: {m.group(0)}" for s in RUNBOOK_SCRIPTS for m in GNU_SED.finditer(s.read_text())]
    assert found == []
    assert GNU_SED.search("sed -n 's/a\\+//p'") and GNU_SED.search("sed 's/x/y/I'")


def test_deploy_scripts_run_nothing_but_listed_tools():
    """The runbook's helper scripts call scripts/lib/common.sh's log/warn/die only; nothing there that
    needs GNU tools (apt_install, ensure_disk_space) is called from deploy/scripts."""
    common = (REPO / "scripts" / "lib" / "common.sh").read_text()
    gnu_helpers = [name for name in re.findall(r"^([a-z_]+)\(\) \{", common, re.M)
                   if name not in ("log", "warn", "die")]
    for script in RUNBOOK_SCRIPTS:
        text = script.read_text()
        used = [name for name in gnu_helpers if re.search(rf"(^|[\s;(|&]){name}\b", text, re.M)]
        assert used == [], f"{script.name} calls {used} from common.sh, which macOS may not run"
