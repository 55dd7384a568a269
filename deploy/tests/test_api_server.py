"""Every overlay, applied by deploy/scripts/overlay to a real kube-apiserver (server-side apply, strict
field validation, every CRD installed, spin-operator's validation rules as a webhook), is accepted
object by object; the cluster-wide Shim is accepted by runtime-class-manager's CRD."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml
from conftest import DEPLOY, K8S, Rendered, delete_namespace


def _written(audit: list[dict], kind_resource: str) -> list[tuple[int, str]]:
    """(position, name) of each successful create/patch/update of a resource in an audit trail."""
    return [
        (i, e["objectRef"].get("name", ""))
        for i, e in enumerate(audit)
        if e.get("objectRef", {}).get("resource") == kind_resource
        and not e["objectRef"].get("subresource")
        and e["verb"] in ("create", "patch", "update")
        and e.get("responseStatus", {}).get("code", 0) < 300
    ]


def assert_executors_first(audit: list[dict], rendered: Rendered) -> None:
    """Each SpinApp is written only after the SpinAppExecutor it names was."""
    executors = _written(audit, "spinappexecutors")
    apps = _written(audit, "spinapps")
    assert apps, "no SpinApp was written"
    for app in rendered.of_kind("SpinApp"):
        name, executor = app["metadata"]["name"], app["spec"]["executor"]
        first_app = min(i for i, n in apps if n == name)
        before = [i for i, n in executors if n == executor and i < first_app]
        assert before, f"SpinApp {name} was written before its SpinAppExecutor {executor}"


def assert_all_stored(cluster, rendered: Rendered) -> None:
    missing = []
    for doc in rendered.docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        namespace = doc["metadata"].get("namespace")
        args = ["get", f"{kind}.{doc['apiVersion'].split('/')[0]}" if "/" in doc["apiVersion"] else kind, name,
                "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        if cluster.kubectl(*args, check=False).returncode != 0:
            missing.append(f"{kind}/{name}")
    assert missing == [], "objects the API server does not have after the apply"


def test_every_overlay_is_accepted_by_a_real_api_server(cluster, empty_namespace, run_script, rendered: Rendered,
                                                        k8s_copy):
    # An overlay may use a namespace of its own: start without it too.
    namespaces = {d["metadata"]["name"] for d in rendered.of_kind("Namespace")}
    for namespace in namespaces - {empty_namespace}:
        delete_namespace(cluster, namespace)
    run = run_script("overlay", "apply", str(k8s_copy / "overlays" / rendered.overlay),
                     "--server-side", "--validate=strict", "--field-manager=vid2mp3-tests")
    assert run.returncode == 0, f"{rendered.overlay}: not every object was accepted:\n{run.stderr}\n{run.stdout}"
    assert "Warning" not in run.stderr, run.stderr
    assert cluster.webhook.refusals == [], cluster.webhook.refusals
    assert len(rendered.docs) >= 30
    assert_all_stored(cluster, rendered)
    assert_executors_first(run.audit, rendered)
    assert {e["objectRef"]["namespace"] for e in run.audit if e.get("objectRef", {}).get("namespace")} <= namespaces, \
        "an object outside the overlay's namespace"


def test_kustomizes_own_order_is_refused_by_the_webhook(cluster, empty_namespace, k8s_copy):
    """What deploy/scripts/overlay avoids: `kubectl apply -k` writes SpinApps before their executor
    (kustomize sorts kinds by name), and spin-operator's webhook refuses them, so the first apply fails."""
    result = cluster.kubectl("apply", "-k", str(k8s_copy / "overlays" / "minikube"), user="script", check=False)
    assert result.returncode != 0
    assert "executor does not exist in namespace" in result.stderr


def test_the_shim_is_accepted_by_runtime_class_managers_crd(cluster):
    result = cluster.kubectl("apply", "--server-side", "--validate=strict", "--dry-run=server",
                             "-f", str(K8S / "cluster" / "shim-spin.yaml"), user="script")
    assert "serverside-applied" in result.stdout


def test_a_misspelt_shim_field_is_refused(cluster):
    """Strict validation really is on: a field the CRD does not know fails instead of being dropped."""
    shim = yaml.safe_load((K8S / "cluster" / "shim-spin.yaml").read_text())
    shim["spec"]["containerdRuntimeOption"] = shim["spec"].pop("containerdRuntimeOptions")
    result = cluster.kubectl("apply", "--server-side", "--validate=strict", "--dry-run=server", "-f", "-",
                             input=yaml.safe_dump(shim), user="script", check=False)
    assert result.returncode != 0
    assert ".spec.containerdRuntimeOption: field not declared in schema" in result.stderr


def test_the_shim_pins_digests_and_the_cgroup_driver(cluster):
    """Every archive has a sha256 the install Job checks; where it is one runtime-class-manager's own
    sample names, the digest is the sample's; containerd is told the node's cgroup driver (systemd)."""
    shim = yaml.safe_load((K8S / "cluster" / "shim-spin.yaml").read_text())
    sample = yaml.safe_load(
        (Path(os.environ["VID2MP3_RUNTIME_CLASS_MANAGER_SRC"]) / "config" / "samples" / "sample_shim_spin.yaml").read_text()
    )
    sample_digests = {p["location"]: p["sha256"] for p in sample["spec"]["fetchStrategy"]["platforms"]}
    platforms = shim["spec"]["fetchStrategy"]["platforms"]
    assert {p["arch"] for p in platforms} == {"x86_64", "aarch64"}
    for platform in platforms:
        assert re.fullmatch(r"[0-9a-f]{64}", platform.get("sha256", "")), platform
        if platform["location"] in sample_digests:
            assert platform["sha256"] == sample_digests[platform["location"]], platform["location"]
    assert shim["spec"]["containerdRuntimeOptions"] == {"SystemdCgroup": "true"}
    assert shim["spec"]["containerdRuntimeOptions"] == sample["spec"]["containerdRuntimeOptions"]


def test_the_overlay_script_refuses_a_folder_that_is_no_overlay(tmp_path):
    result = subprocess.run([str(DEPLOY / "scripts" / "overlay"), "apply", str(tmp_path)], capture_output=True,
                            text=True)
    assert result.returncode == 1
    assert "is not a Kustomize overlay" in result.stderr
