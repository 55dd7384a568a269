"""A PATH with only the tools deploy/scripts may use, each restricted to what macOS's own version accepts.

The runbook must work on a Mac as it comes (BSD userland, bash 3.2, LibreSSL; Homebrew only for the
tools the runbook names). The tests run deploy/scripts with PATH set to a folder made here:

- a tool not listed is simply not there, so a script that starts using one fails with "command not
  found" until it is added here, on purpose;
- awk is Debian's original-awk, the one true awk that macOS's awk is (deploy/tests/run installs it);
- the other small tools are the host's GNU ones behind a shim that refuses every option macOS's version
  lacks or reads differently (`base64 -w`, `sed -i` without a suffix, `date -d`, `mktemp --tmpdir`,
  `head -n -N`, any `--long-option`...), so a GNU-only call fails here as it would on a Mac;
- kubectl, openssl, python3, curl, bash are the real ones (the runbook needs them installed; kubectl
  is the pinned build from deploy/tests/run), and minikube, helm, docker, ffmpeg are stand-ins that record
  their arguments (no cluster, registry or daemon here).

What a shim cannot see: GNU extensions inside a sed script or a regular expression. The scripts keep
sed to plain `s///` and `-n` ... `p`, which test_scripts.py's lint checks."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

# The options macOS's version of each tool accepts with the same meaning as GNU's; `None` for an
# option that takes a value (the next argument, or attached: `-n5`). Arguments not starting with `-`
# are always allowed.
MACOS_OPTIONS: dict[str, dict[str, bool]] = {
    # macOS: -b/--break, -D/-d/--decode, -i, -o. GNU's -i means something else, -w does not exist.
    "base64": {"-d": False, "-D": False, "--decode": False},
    "sed": {"-n": False, "-e": True, "-E": False, "-f": True},
    "date": {"-u": False},
    "mktemp": {"-d": False, "-q": False, "-t": True},
    "tail": {"-n": True, "-c": True, "-f": False, "-r": False},
    "head": {"-n": True, "-c": True},
    "tr": {"-c": False, "-C": False, "-d": False, "-s": False},
    "cut": {"-b": True, "-c": True, "-d": True, "-f": True, "-s": False},
    "wc": {"-c": False, "-l": False, "-m": False, "-w": False},
    "seq": {"-f": True, "-s": True, "-w": False},
    "sleep": {},
    "cat": {},
    "rm": {"-f": False, "-r": False, "-rf": False, "-fr": False},
    "dirname": {},
    "basename": {},
    "mkdir": {"-p": False},
}
# Real tools the runbook requires on the host, and the bash the scripts run in.
REAL_TOOLS = ("bash", "python3", "openssl", "curl")
STAND_INS = ("minikube", "helm", "docker", "ffmpeg")


def _shim_source(tool: str, real: str, options: dict[str, bool]) -> str:
    return f'''#!{sys.executable}
# {tool} as macOS has it: the options macOS's {tool} does not accept are refused. Made by deploy/tests/macos_tools.py.
import os, sys
OPTIONS = {options!r}
args = sys.argv[1:]
i = 0
while i < len(args):
    arg = args[i]
    if arg == "--" or not arg.startswith("-") or arg == "-":
        break  # BSD tools, like POSIX, take no option after the first operand
    if not (arg[1:].isdigit() and "{tool}" in ("tail", "head")):
        name = arg if arg.startswith("--") else arg[:2]
        if arg in OPTIONS:
            name = arg
        if name not in OPTIONS:
            sys.stderr.write(f"{tool}: option {{arg!r}} is not one macOS's {tool} accepts (deploy/tests/macos_tools.py)\\n")
            sys.exit(64)
        if OPTIONS[name]:
            value = arg[len(name):] or (args[i + 1] if i + 1 < len(args) else "")
            if not arg[len(name):]:
                i += 1
            if "{tool}" == "head" and value.startswith("-"):
                sys.stderr.write(f"head: a negative count ({{value}}) is GNU-only (deploy/tests/macos_tools.py)\\n")
                sys.exit(64)
    i += 1
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
'''


def _stand_in_source(tool: str, record: Path) -> str:
    return f'''#!{sys.executable}
# A stand-in for {tool}: records its arguments and succeeds. Made by deploy/tests/macos_tools.py.
import json, sys
with open({str(record)!r}, "a") as f:
    f.write(json.dumps(["{tool}", *sys.argv[1:]]) + "\\n")
'''


def _write(path: Path, source: str) -> None:
    path.write_text(source)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def make_path(d: Path, kubectl: Path, record: Path) -> str:
    """Fills `d` with the tools above and returns it as a PATH (nothing else on it)."""
    d.mkdir(parents=True, exist_ok=True)
    host_path = os.environ.get("PATH", os.defpath)
    for tool, options in MACOS_OPTIONS.items():
        real = shutil.which(tool, path=host_path)
        if real is None:
            raise RuntimeError(f"{tool} is not installed on this host")
        _write(d / tool, _shim_source(tool, real, options))
    awk = shutil.which("original-awk", path=host_path)
    if awk is None:
        raise RuntimeError("original-awk is not installed (deploy/tests/run installs it: apt package original-awk)")
    (d / "awk").symlink_to(awk)
    for tool in REAL_TOOLS:
        real = shutil.which(tool, path=host_path)
        if real is None:
            raise RuntimeError(f"{tool} is not installed on this host")
        (d / tool).symlink_to(real)
    (d / "kubectl").symlink_to(kubectl)
    for tool in STAND_INS:
        _write(d / tool, _stand_in_source(tool, record))
    return str(d)
