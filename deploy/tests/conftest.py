"""Shared fixtures for the offline checks of deploy/: the repository, spin.toml, and every overlay
rendered with kustomize (in a scratch copy, with each overlay's secrets.env made from its committed
secrets.env.example, so no real credentials are needed or written into the checkout)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
# The SpinKube CRDs live beside the repository, never inside it (see /work/shared/reference/README.md).
REFERENCE = Path(os.environ.get("VID2MP3_SPINKUBE_REFERENCE", REPO.parent / "shared" / "reference" / "spinkube"))

# Kinds that are not part of Kubernetes itself: each is checked by a test of its own, never skipped silently.
CUSTOM_KINDS = {
    ("core.spinkube.dev/v1alpha1", "SpinApp"),
    ("core.spinkube.dev/v1alpha1", "SpinAppExecutor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}


def kustomize_command() -> list[str]:
    """deploy/tests/run sets VID2MP3_KUSTOMIZE (`kubectl kustomize` or a pinned kustomize binary)."""
    configured = os.environ.get("VID2MP3_KUSTOMIZE")
    if configured:
        return shlex.split(configured)
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    pytest.fail("no kustomize: run deploy/tests/run, which installs one, or put kubectl on PATH")


@dataclass
class Rendered:
    overlay: str
    docs: list[dict]

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict | None:
        for d in self.docs:
            if d["kind"] == kind and d["metadata"]["name"] == name:
                return d
        return None


@pytest.fixture(scope="session")
def k8s_copy(tmp_path_factory) -> Path:
    """deploy/k8s copied to a scratch directory, with secrets.env made from each .example."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, root, ignore=shutil.ignore_patterns("secrets.env"))
    for example in root.glob("overlays/*/secrets.env.example"):
        shutil.copyfile(example, example.with_name("secrets.env"))
    return root


_render_cache: dict[str, Rendered] = {}


def render(k8s_root: Path, overlay: str) -> Rendered:
    if overlay not in _render_cache:
        result = subprocess.run(
            [*kustomize_command(), str(k8s_root / "overlays" / overlay)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"overlay {overlay} does not render:\n{result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        _render_cache[overlay] = Rendered(overlay, docs)
    return _render_cache[overlay]


@pytest.fixture(scope="session", params=OVERLAYS)
def rendered(request, k8s_copy) -> Rendered:
    return render(k8s_copy, request.param)


@pytest.fixture(scope="session")
def spin_manifest() -> dict:
    """spin.toml as it is now: colleagues change its variables, so it is read at test time.
    VID2MP3_SPIN_TOML names another file, to see these checks fail on a changed manifest."""
    with open(os.environ.get("VID2MP3_SPIN_TOML", REPO / "spin.toml"), "rb") as f:
        return tomllib.load(f)


def pod_spec(doc: dict) -> dict | None:
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "Pod":
        return doc["spec"]
    return None


def pod_labels(doc: dict) -> dict | None:
    """Labels of the pods a workload makes (a SpinApp's podLabels are put on its pods by spin-operator)."""
    kind = doc["kind"]
    if kind == "SpinApp":
        return doc["spec"].get("podLabels", {})
    if kind == "Pod":
        return doc["metadata"].get("labels", {})
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    if pod_spec(doc) is not None:
        return doc["spec"]["template"]["metadata"].get("labels", {})
    return None
