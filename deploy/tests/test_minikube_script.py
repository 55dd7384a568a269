"""deploy/scripts/minikube against a real API server, with macOS's tools only (conftest's run_script):
every kubectl command line it can run is parsed by the real kubectl and reaches the API server; the
first `apply` succeeds under spin-operator's webhook rule; `delete` keeps the Namespace and the PVCs and
only `purge` removes them; `platform` waits for the Shim's nodes, not for the RuntimeClass.

Not run here: `images` and `up` (Docker), `smoke` (needs the application running; its port-forwards are
`forward`'s), and `watch` with k9s installed (a TUI; its kubectl fallback is run)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
import yaml
from conftest import NAMESPACE, render
from test_api_server import assert_all_stored, assert_executors_first

NODE = "vid2mp3"  # minikube names its one node after the profile


def deletes(audit: list[dict], resource: str) -> list[str]:
    return [e["objectRef"].get("name", "*") for e in audit
            if e["verb"] in ("delete", "deletecollection") and e.get("objectRef", {}).get("resource") == resource]


def test_secrets_writes_a_key_pair_with_macos_tools(run_script, script_tree):
    env_file = script_tree / "deploy" / "k8s" / "overlays" / "minikube" / "secrets.env"
    env_file.unlink(missing_ok=True)
    run = run_script("minikube", "secrets")
    assert run.returncode == 0, run.stderr
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert len(values["token-signing-key"]) == 64 and "\n" not in values["token-signing-key"]  # 48 DER bytes
    jwks = json.loads(values["token-public-keys"])
    assert len(jwks["keys"][0]["x"]) == 43  # 32 bytes, base64url without padding
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_the_first_apply_succeeds_with_spinapps_after_their_executor(cluster, empty_namespace, run_script,
                                                                     script_tree):
    run = run_script("minikube", "apply")
    assert run.returncode == 0, f"the first `apply` failed:\n{run.stderr}"
    assert cluster.webhook.refusals == []
    rendered = render_script_overlay(script_tree)
    assert_all_stored(cluster, rendered)
    assert_executors_first(run.audit, rendered)
    # Applied again (as `deploy` does each time): the migrations Job is replaced, nothing else refused.
    again = run_script("minikube", "apply")
    assert again.returncode == 0, again.stderr
    assert deletes(again.audit, "jobs") == ["vid2mp3-migrate"]


def render_script_overlay(script_tree):
    """The minikube overlay as the script applied it (with the secrets.env it wrote)."""
    return render(script_tree / "deploy" / "k8s", "minikube", cached=False)


def _statefulset_pvcs(cluster) -> list[str]:
    result = cluster.kubectl("-n", NAMESPACE, "get", "pvc", "-o", "jsonpath={.items[*].metadata.name}")
    return sorted(result.stdout.split())


def test_delete_keeps_the_namespace_and_the_data(cluster, empty_namespace, run_script):
    assert run_script("minikube", "apply").returncode == 0
    # The StatefulSet controller makes each StatefulSet's PVC, as on a cluster.
    pvcs = cluster.wait_for("the StatefulSets' PVCs", lambda: len(_statefulset_pvcs(cluster)) >= 4 and _statefulset_pvcs(cluster))

    run = run_script("minikube", "delete")
    assert run.returncode == 0, run.stderr
    assert deletes(run.audit, "namespaces") == []
    assert deletes(run.audit, "persistentvolumeclaims") == []
    assert deletes(run.audit, "spinapps"), "the SpinApps were not deleted"
    assert deletes(run.audit, "statefulsets"), "the StatefulSets were not deleted"
    assert cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0
    # Nothing the controllers do afterwards (garbage collection of the StatefulSets' pods) takes them.
    time.sleep(3)
    assert _statefulset_pvcs(cluster) == pvcs
    left = cluster.kubectl("-n", NAMESPACE, "get", "statefulsets,deployments,services,spinapps,configmaps,secrets",
                           "-o", "name").stdout.split()
    assert [name for name in left if not name.startswith("configmap/kube-root-ca.crt")] == []

    # A later deploy finds the data: the same PVCs are used by the new StatefulSets.
    assert run_script("minikube", "apply").returncode == 0
    assert _statefulset_pvcs(cluster) == pvcs


def test_purge_removes_the_namespace_and_its_pvcs(cluster, empty_namespace, run_script):
    assert run_script("minikube", "apply").returncode == 0
    cluster.wait_for("the StatefulSets' PVCs", lambda: len(_statefulset_pvcs(cluster)) >= 4)
    run = run_script("minikube", "purge", timeout=300)
    assert run.returncode == 0, run.stderr
    assert deletes(run.audit, "namespaces") == [NAMESPACE]
    assert cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0


def _running_pod(cluster, name: str, labels: dict, spec: dict) -> None:
    """A pod as its controller would make it, bound to the node and reported Running (no kubelet here)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
           "spec": {**spec, "nodeName": NODE}}
    status, body = cluster.api("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod)
    assert status == 201, body
    status, body = cluster.api("PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status",
                               {"status": {"phase": "Running"}}, content_type="application/merge-patch+json")
    assert status == 200, body


def test_forward_parses_and_reaches_both_pods(cluster, empty_namespace, run_script, script_tree):
    """kubectl port-forward parses its arguments and looks its pod up before it asks the API server for
    the stream; here no kubelet answers, so each forward stops right after asking, and `forward` must say
    so with kubectl's words. That both streams were asked for shows both command lines are right."""
    assert run_script("minikube", "apply").returncode == 0
    cluster.wait_for("the namespace's default ServiceAccount (no pod is admitted without it)",
                     lambda: cluster.api("GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")[0] == 200)
    rendered = render_script_overlay(script_tree)
    gateway = rendered.get("Service", "gateway")
    # spin-operator's pods for vid2mp3-http: the SpinApp's pod labels, the HTTP port named http-app (80).
    _running_pod(cluster, "vid2mp3-http-test", gateway["spec"]["selector"],
                 {"containers": [{"name": "vid2mp3-http", "image": "vid2mp3/spin-app:dev",
                                  "ports": [{"name": "http-app", "containerPort": 80}]}]})
    mailpit = rendered.get("Deployment", "mailpit")["spec"]["template"]
    _running_pod(cluster, "mailpit-test", mailpit["metadata"]["labels"], mailpit["spec"])

    run = run_script("minikube", "forward", timeout=120)
    assert run.returncode != 0
    streams = [e["objectRef"]["name"] for e in run.audit
               if e["objectRef"].get("subresource") == "portforward" and e["verb"] == "create"]
    assert "vid2mp3-http-test" in streams, f"kubectl never asked for the gateway's stream:\n{run.stderr}"
    assert "mailpit-test" in streams, f"kubectl never asked for Mailpit's stream:\n{run.stderr}"
    assert "kubectl port-forward svc/gateway stopped" in run.stderr
    assert "kubectl port-forward svc/mailpit stopped" in run.stderr
    assert "does not have a named port" not in run.stderr and "invalid port" not in run.stderr


def test_status_names_only_resources_the_api_server_knows(cluster, empty_namespace, run_script):
    assert run_script("minikube", "apply").returncode == 0
    run = run_script("minikube", "status")
    assert run.returncode == 0, run.stderr
    assert "spinapp.core.spinkube.dev/vid2mp3-http" in run.stdout or "vid2mp3-http" in run.stdout


@pytest.fixture
def node(cluster):
    """The one node minikube makes, as the API server knows it (nobody runs a kubelet for it)."""
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
            "status": {"nodeInfo": {"operatingSystem": "linux", "architecture": "amd64"}}}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
    yield NODE
    cluster.kubectl("delete", "node", NODE, "--ignore-not-found")


def test_start_labels_the_node_for_the_shim(cluster, node, run_script, script_path):
    _, record = script_path
    run = run_script("minikube", "start")
    assert run.returncode == 0, run.stderr
    labels = json.loads(cluster.kubectl("get", "node", node, "-o", "json").stdout)["metadata"]["labels"]
    assert labels.get("spin") == "true"
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert ["minikube", "-p", "vid2mp3", "addons", "enable", "ingress"] in calls


class RuntimeClassManager:
    """What runtime-class-manager v0.2.0 does with a Shim, reduced to its status (shim_controller.go):
    `nodes` counts the nodes its nodeSelector picks, `nodesReady` those labelled `<shim>=provisioned`
    once the install Job has run (here: after `install_secs`). Also marks cert-manager's Deployments
    Available, as their pods would."""

    def __init__(self, cluster, install_secs: float | None):
        self.cluster = cluster
        self.install_secs = install_secs
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        shim_seen = None
        while not self.stop.wait(0.5):
            status, deployments = self.cluster.api("GET", "/apis/apps/v1/namespaces/cert-manager/deployments")
            for d in deployments.get("items", []) if status == 200 else []:
                self.cluster.api("PATCH", f"/apis/apps/v1/namespaces/cert-manager/deployments/{d['metadata']['name']}/status",
                                 {"status": {"conditions": [{"type": "Available", "status": "True",
                                                             "reason": "MinimumReplicasAvailable"}]}},
                                 content_type="application/merge-patch+json")
            status, shim = self.cluster.api("GET", "/apis/runtime.spinkube.dev/v1alpha1/shims/spin-v2")
            if status != 200:
                continue
            shim_seen = shim_seen or time.monotonic()
            selector = ",".join(f"{k}={v}" for k, v in shim["spec"].get("nodeSelector", {}).items())
            _, nodes = self.cluster.api("GET", f"/api/v1/nodes?labelSelector={selector}")
            count = len(nodes.get("items", []))
            ready = count if self.install_secs is not None and time.monotonic() - shim_seen > self.install_secs else 0
            shim["status"] = {"nodes": count, "nodesReady": ready}
            self.cluster.api("PUT", "/apis/runtime.spinkube.dev/v1alpha1/shims/spin-v2", shim)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.fixture
def platform_env(cluster, tmp_path, node):
    """`platform`'s release manifests from files (the tests have no route to GitHub): a stand-in for
    cert-manager's (its namespace and one Deployment) and spin-operator's real CRDs."""
    import cluster as control_plane

    cert_manager = tmp_path / "cert-manager.yaml"
    cert_manager.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cert-manager", "namespace": "cert-manager"},
         "spec": {"selector": {"matchLabels": {"app": "cert-manager"}},
                  "template": {"metadata": {"labels": {"app": "cert-manager"}},
                               "spec": {"containers": [{"name": "c", "image": "cert-manager"}]}}}},
    ]))
    crds = tmp_path / "spin-operator.crds.yaml"
    crds.write_text("---\n".join(p.read_text() for p in control_plane.crd_files()["spin-operator"]))
    cluster.kubectl("label", "node", node, "spin=true", "--overwrite")
    yield {"VID2MP3_CERT_MANAGER_MANIFEST": str(cert_manager), "VID2MP3_SPIN_OPERATOR_CRDS": str(crds)}
    cluster.kubectl("delete", "shim", "spin-v2", "--ignore-not-found")
    cluster.kubectl("delete", "namespace", "cert-manager", "--ignore-not-found", "--wait=false")


def test_platform_waits_until_the_shim_is_on_every_node(cluster, run_script, platform_env, script_path):
    _, record = script_path
    with RuntimeClassManager(cluster, install_secs=4):
        started = time.monotonic()
        run = run_script("minikube", "platform", env=platform_env)
        took = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert "Shim spin-v2: installed on 1/1 nodes" in run.stderr
    assert took >= 4, "platform did not wait for the Shim's nodesReady"
    gets = [e for e in run.audit if e.get("objectRef", {}).get("resource") == "shims" and e["verb"] == "get"]
    assert gets, "platform never read the Shim"
    assert not [e for e in run.audit if e.get("objectRef", {}).get("resource") == "runtimeclasses"]
    helm = [json.loads(line) for line in record.read_text().splitlines() if line.startswith('["helm"')]
    charts = [call[-1] for call in helm]
    assert "oci://ghcr.io/spinframework/charts/runtime-class-manager" in charts
    assert "oci://ghcr.io/spinframework/charts/spin-operator" in charts


def test_platform_names_the_nodes_when_the_shim_never_gets_ready(cluster, run_script, platform_env):
    with RuntimeClassManager(cluster, install_secs=None):
        run = run_script("minikube", "platform", env={**platform_env, "VID2MP3_SHIM_WAIT_SECS": "6"})
    assert run.returncode == 1
    assert "Shim spin-v2 is installed on 0/1 (ready/selected) nodes after 6s" in run.stderr


class NodeAndOperators:
    """What a node's kubelet, the Deployment and Job controllers and spin-operator would make of the
    application, reduced to what `deploy` waits for: each SpinApp gets its Deployment (named after it,
    as spin-operator names it), every Deployment and the StatefulSets' pods are ready, Jobs complete.
    Nothing here runs a container."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _merge_status(self, path: str, status: dict) -> None:
        self.cluster.api("PATCH", path + "/status", {"status": status}, content_type="application/merge-patch+json")

    def run(self):
        ns = f"/namespaces/{NAMESPACE}"
        while not self.stop.wait(0.5):
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            _, apps = self.cluster.api("GET", f"/apis/core.spinkube.dev/v1alpha1{ns}/spinapps")
            for app in apps.get("items", []):
                name = app["metadata"]["name"]
                labels = {"core.spinkube.dev/app-name": name}
                self.cluster.api("POST", f"/apis/apps/v1{ns}/deployments", {
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                    "spec": {"replicas": app["spec"].get("replicas", 1), "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels},
                                          "spec": {"containers": [{"name": name, "image": app["spec"]["image"]}]}}}})
            _, deployments = self.cluster.api("GET", f"/apis/apps/v1{ns}/deployments")
            for d in deployments.get("items", []):
                replicas = d["spec"].get("replicas", 1)
                self._merge_status(f"/apis/apps/v1{ns}/deployments/{d['metadata']['name']}", {
                    "observedGeneration": d["metadata"]["generation"], "replicas": replicas,
                    "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                         "lastUpdateTime": now, "lastTransitionTime": now},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                         "lastUpdateTime": now, "lastTransitionTime": now}]})
            _, pods = self.cluster.api("GET", f"/api/v1{ns}/pods")
            for pod in pods.get("items", []):
                if pod["status"].get("phase") != "Running":
                    self._merge_status(f"/api/v1{ns}/pods/{pod['metadata']['name']}", {
                        "phase": "Running", "startTime": now,
                        "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                                       for t in ("Initialized", "ContainersReady", "Ready", "PodScheduled")]})
            _, jobs = self.cluster.api("GET", f"/apis/batch/v1{ns}/jobs")
            for job in jobs.get("items", []):
                if not job.get("status", {}).get("completionTime"):
                    self._merge_status(f"/apis/batch/v1{ns}/jobs/{job['metadata']['name']}", {
                        "startTime": now, "completionTime": now, "succeeded": 1,
                        "conditions": [
                            {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
                            {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}]})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_deploy_waits_for_every_workload_and_the_migrations(cluster, empty_namespace, run_script):
    """`deploy`'s waits (rollout status of each StatefulSet and Deployment, the migrations Job's
    completion) parse and end once what they wait for is ready."""
    with NodeAndOperators(cluster):
        run = run_script("minikube", "deploy", timeout=600)
    assert run.returncode == 0, run.stderr
    waited = {e["objectRef"].get("resource") + "/" + e["objectRef"].get("name", "")
              for e in run.audit if e["verb"] in ("get", "watch", "list") and e.get("objectRef", {}).get("name")}
    for workload in ("statefulsets/mysql", "statefulsets/rabbitmq", "statefulsets/redis", "statefulsets/mongodb",
                     "jobs/vid2mp3-migrate", "deployments/converter", "deployments/vid2mp3-http",
                     "deployments/vid2mp3-notifier", "deployments/mailpit"):
        assert workload in waited, f"deploy never looked at {workload}"
    assert "vid2mp3-http" in run.stdout  # the closing `get spinapps,pods`


def test_watch_without_k9s_watches_the_pods(cluster, empty_namespace, run_script):
    assert run_script("minikube", "apply").returncode == 0
    run = run_script("minikube", "watch", timeout=8, runs_until_stopped=True)
    assert run.returncode is None, run.stderr
    assert "k9s is not installed" in run.stderr
    watches = [e for e in run.audit if e["verb"] == "watch" and e.get("objectRef", {}).get("resource") == "pods"]
    assert watches and watches[0]["objectRef"]["namespace"] == NAMESPACE
