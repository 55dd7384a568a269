"""Shared fixtures for the checks of deploy/: the repository, spin.toml, every overlay rendered with
kustomize (in a scratch copy, with each overlay's secrets.env made from its committed
secrets.env.example, so no real credentials are needed or written into the checkout), and a real API
server with deploy/scripts run against it (cluster.py, macos_tools.py)."""

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
# Where that folder is absent: spin-operator's Go module, which deploy/tests/run fetches (same files).
SPIN_OPERATOR_SRC = os.environ.get("VID2MP3_SPIN_OPERATOR_SRC")


def spinkube_crds() -> dict[str, Path]:
    """{"SpinApp": path, "SpinAppExecutor": path} from REFERENCE, else from spin-operator's module; {}
    when neither is there."""
    reference = {"SpinApp": REFERENCE / "spinapps.crd.yaml", "SpinAppExecutor": REFERENCE / "spinappexecutors.crd.yaml"}
    if all(p.is_file() for p in reference.values()):
        return reference
    if SPIN_OPERATOR_SRC:
        bases = Path(SPIN_OPERATOR_SRC) / "config" / "crd" / "bases"
        module = {"SpinApp": bases / "core.spinkube.dev_spinapps.yaml",
                  "SpinAppExecutor": bases / "core.spinkube.dev_spinappexecutors.yaml"}
        if all(p.is_file() for p in module.values()):
            return module
    return {}

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


def render(k8s_root: Path, overlay: str, cached: bool = True) -> Rendered:
    """An overlay of a copy of deploy/k8s, rendered; `cached=False` where its secrets.env may change."""
    key = str(k8s_root / "overlays" / overlay)
    if key not in _render_cache or not cached:
        result = subprocess.run(
            [*kustomize_command(), str(k8s_root / "overlays" / overlay)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"overlay {overlay} does not render:\n{result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        _render_cache[key] = Rendered(overlay, docs)
    return _render_cache[key]


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


# --- a real API server, and deploy/scripts run against it (cluster.py, macos_tools.py) ---------------

NAMESPACE = "vid2mp3"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """etcd + kube-apiserver + kube-controller-manager with every CRD deploy/ needs and spin-operator's
    validation rules as a webhook; one per test session (about 15 s to start)."""
    import cluster as control_plane

    try:
        started = control_plane.start_cluster(tmp_path_factory.mktemp("cluster"))
    except RuntimeError as e:
        pytest.fail(str(e))
    webhook = None
    try:
        control_plane.install_crds(started)
        webhook = control_plane.SpinKubeWebhook(started)
        webhook.register()
        started.webhook = webhook
        _wait_for_webhook(started)
        yield started
    finally:
        if webhook is not None:
            webhook.stop()
        started.stop()
        # etcd's data (its write-ahead log alone preallocates 64 MB); the logs stay for a failure's story.
        shutil.rmtree(started.dir / "etcd", ignore_errors=True)


def _wait_for_webhook(cluster) -> None:
    """The API server picks a new webhook configuration up within a second or so: wait until it refuses."""
    probe = {"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp",
             "metadata": {"name": "probe", "namespace": "default"},
             "spec": {"image": "probe", "executor": "no-such-executor", "replicas": 1}}

    def refused():
        status, body = cluster.api("POST", "/apis/core.spinkube.dev/v1alpha1/namespaces/default/spinapps?dryRun=All",
                                   probe)
        return status == 422 and "executor does not exist" in body.get("message", "")

    cluster.wait_for("the SpinKube webhook to be called", refused, timeout=30)
    cluster.webhook.refusals.clear()


def delete_namespace(cluster, name: str) -> None:
    """Deletes a namespace and waits until the namespace controller has removed all it held."""
    # A pod bound to a node is only gone once that node's kubelet says so, and there is no kubelet here:
    # such pods (the port-forward test makes them) are removed at once, as `--force` does.
    cluster.kubectl("-n", name, "delete", "pods", "--all", "--grace-period=0", "--force", "--ignore-not-found",
                    check=False)
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait", "--timeout=180s", timeout=200)


@pytest.fixture
def empty_namespace(cluster):
    """No namespace vid2mp3 (a previous test's is deleted and waited for): each test starts from a
    cluster where the application was never deployed."""
    delete_namespace(cluster, NAMESPACE)
    cluster.webhook.refusals.clear()
    return NAMESPACE


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


@dataclass
class ScriptRun:
    returncode: int | None
    stdout: str
    stderr: str
    audit: list[dict]  # what the script's kubectl asked the API server, in order


@pytest.fixture(scope="session")
def script_tree(tmp_path_factory) -> Path:
    """What deploy/scripts needs of the repository, copied, so that `secrets` writes there, not here."""
    root = tmp_path_factory.mktemp("repo")
    (root / "scripts" / "lib").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "lib" / "common.sh", root / "scripts" / "lib" / "common.sh")
    shutil.copytree(DEPLOY / "scripts", root / "deploy" / "scripts")
    shutil.copytree(K8S, root / "deploy" / "k8s", ignore=shutil.ignore_patterns("secrets.env"))
    return root


@pytest.fixture(scope="session")
def script_path(tmp_path_factory, cluster) -> tuple[str, Path]:
    """The PATH deploy/scripts run with (macOS's tools only) and the file its stand-ins record into."""
    import macos_tools

    d = tmp_path_factory.mktemp("macos-path")
    record = d / "stand-ins.jsonl"
    record.touch()
    return macos_tools.make_path(d / "bin", cluster.bin / "kubectl", record), record


@pytest.fixture
def run_script(cluster, script_tree, script_path):
    """Runs deploy/scripts/NAME ARGS... against the test API server, as the kube context `vid2mp3`
    (the minikube profile), with macOS's tools only; returns its outcome and the requests it made."""
    path, _ = script_path

    def run(name: str, *args: str, env: dict | None = None, timeout: float = 300,
            runs_until_stopped: bool = False) -> ScriptRun:
        """`runs_until_stopped`: the command never ends by itself (`watch`); it is stopped after
        `timeout` seconds, and returncode is None."""
        mark = cluster.audit_mark()
        environment = {
            "PATH": path,
            "HOME": str(script_tree),
            "KUBECONFIG": str(cluster.kubeconfig("script")),
            "LC_ALL": "C",
            **(env or {}),
        }
        try:
            result = subprocess.run([str(script_tree / "deploy" / "scripts" / name), *args], env=environment,
                                    capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            if not runs_until_stopped:
                raise
            result = subprocess.CompletedProcess(e.cmd, None, _text(e.stdout), _text(e.stderr))
        assert "command not found" not in result.stderr, f"a tool macOS lacks, or one not listed in macos_tools.py:\n{result.stderr}"
        assert "macos_tools.py" not in result.stderr, f"a GNU-only option:\n{result.stderr}"
        return ScriptRun(result.returncode, result.stdout, result.stderr, cluster.audit_since(mark))

    return run
