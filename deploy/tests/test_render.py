"""Every overlay renders, and what it renders hangs together: each Secret/ConfigMap key a pod or a
custom resource reads exists, each selector selects something, each reference names a real object."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

from conftest import K8S, REPO, OVERLAYS, Rendered, kustomize_command, pod_labels, pod_spec


def test_there_are_overlays_to_check():
    assert {"minikube", "production"} <= set(OVERLAYS)


def test_base_renders_on_its_own():
    result = subprocess.run([*kustomize_command(), str(K8S / "base")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_overlay_renders_a_namespaced_application(rendered: Rendered):
    kinds = Counter(d["kind"] for d in rendered.docs)
    for kind in ("SpinApp", "SpinAppExecutor", "Deployment", "StatefulSet", "Job", "Service", "Ingress",
                 "NetworkPolicy", "PodDisruptionBudget", "Secret", "ConfigMap", "Namespace"):
        assert kinds[kind] >= 1, f"{rendered.overlay}: no {kind}"
    for d in rendered.docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "vid2mp3", f"{d['kind']}/{d['metadata']['name']}"


def test_no_two_objects_share_kind_and_name(rendered: Rendered):
    seen = Counter((d["kind"], d["metadata"]["name"]) for d in rendered.docs)
    assert [k for k, n in seen.items() if n > 1] == []


def _data_keys(doc: dict) -> set[str]:
    return set(doc.get("data", {})) | set(doc.get("stringData", {}))


def _references(rendered: Rendered):
    """(where, kind, name, key) for every Secret/ConfigMap key read by a pod, a SpinApp or KEDA."""
    for d in rendered.docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        spec = pod_spec(d)
        if spec is not None:
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                for env in c.get("env", []):
                    ref = env.get("valueFrom", {})
                    if "secretKeyRef" in ref:
                        yield where, "Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                    if "configMapKeyRef" in ref:
                        yield where, "ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
            for v in spec.get("volumes", []):
                if "configMap" in v:
                    yield where, "ConfigMap", v["configMap"]["name"], None
                if "secret" in v:
                    yield where, "Secret", v["secret"]["secretName"], None
        if d["kind"] == "SpinApp":
            for var in d["spec"].get("variables", []):
                ref = var.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    yield where, "Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                if "configMapKeyRef" in ref:
                    yield where, "ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
        if d["kind"] == "TriggerAuthentication":
            for ref in d["spec"].get("secretTargetRef", []):
                yield where, "Secret", ref["name"], ref["key"]


def test_every_secret_and_configmap_key_read_exists(rendered: Rendered):
    missing = []
    count = 0
    for where, kind, name, key in _references(rendered):
        count += 1
        target = rendered.get(kind, name)
        if target is None:
            missing.append(f"{where} reads {kind} {name!r}, which the overlay does not make")
        elif key is not None and key not in _data_keys(target):
            missing.append(f"{where} reads key {key!r} of {kind} {name!r}, which has {sorted(_data_keys(target))}")
    assert count > 10
    assert missing == []


def test_every_generated_secret_key_is_read(rendered: Rendered):
    """A key nobody reads is a credential someone forgot to wire up (or one to delete)."""
    read = {(kind, name, key) for _, kind, name, key in _references(rendered)}
    for secret in rendered.of_kind("Secret"):
        unread = [k for k in _data_keys(secret) if ("Secret", secret["metadata"]["name"], k) not in read]
        assert unread == [], f"{secret['metadata']['name']}: keys nobody reads: {unread}"


def _workloads(rendered: Rendered):
    return [(d, pod_labels(d)) for d in rendered.docs if pod_labels(d) is not None]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_services_select_pods_with_the_named_ports(rendered: Rendered):
    for svc in rendered.of_kind("Service"):
        selector = svc["spec"].get("selector", {})
        matches = [d for d, labels in _workloads(rendered) if selector and _selects(selector, labels)]
        assert matches, f"Service {svc['metadata']['name']} selects no pods"
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for d in matches:
                if d["kind"] == "SpinApp":
                    # spin-operator's container port is named `http-app`, port 80.
                    assert target in ("http-app", 80), f"Service {svc['metadata']['name']} → {target}"
                    continue
                ports = [p for c in pod_spec(d)["containers"] for p in c.get("ports", [])]
                assert any(target in (p.get("name"), p["containerPort"]) for p in ports), (
                    f"Service {svc['metadata']['name']} targets port {target!r}, not on {d['kind']}/{d['metadata']['name']}"
                )


def test_only_the_gateway_is_exposed(rendered: Rendered):
    for svc in rendered.of_kind("Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
    backends = {
        path["backend"]["service"]["name"]
        for ing in rendered.of_kind("Ingress")
        for rule in ing["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}
    gateway = rendered.get("Service", "gateway")
    selected = [d for d, labels in _workloads(rendered) if _selects(gateway["spec"]["selector"], labels)]
    assert [d["kind"] for d in selected] == ["SpinApp"]
    assert "gateway" in selected[0]["spec"]["components"]


def test_selectors_of_pdbs_and_network_policies_select_pods(rendered: Rendered):
    for d in rendered.of_kind("PodDisruptionBudget") + rendered.of_kind("NetworkPolicy"):
        selector = d["spec"].get("selector", d["spec"].get("podSelector", {})).get("matchLabels", {})
        if d["kind"] == "NetworkPolicy" and not selector:
            continue  # {} selects every pod: the default deny
        assert any(_selects(selector, labels) for _, labels in _workloads(rendered)), (
            f"{d['kind']}/{d['metadata']['name']} selects no pods"
        )
        peers = [peer for rule in d["spec"].get("ingress", []) for peer in rule.get("from", [])]
        peers += [peer for rule in d["spec"].get("egress", []) for peer in rule.get("to", [])]
        for peer in peers:
            if "podSelector" in peer and "namespaceSelector" not in peer:
                sel = peer["podSelector"].get("matchLabels", {})
                assert any(_selects(sel, labels) for _, labels in _workloads(rendered)), (
                    f"NetworkPolicy/{d['metadata']['name']} names {sel}, which selects no pods"
                )


def test_only_the_spin_app_reaches_the_converter(rendered: Rendered):
    converter = pod_labels(rendered.get("Deployment", "converter"))
    admitted = []
    for policy in rendered.of_kind("NetworkPolicy"):
        if not _selects(policy["spec"]["podSelector"].get("matchLabels", {}), converter):
            continue
        if not policy["spec"]["podSelector"].get("matchLabels"):
            assert "ingress" not in policy["spec"], "a policy over every pod must only deny"
            continue
        for rule in policy["spec"].get("ingress", []):
            admitted += rule.get("from", [{}])
    pod_peers = [p for p in admitted if "podSelector" in p]
    assert pod_peers, "nothing may reach the converter?"
    for peer in pod_peers:
        sel = peer["podSelector"]["matchLabels"]
        for d, labels in _workloads(rendered):
            if _selects(sel, labels):
                assert d["kind"] == "SpinApp", f"{d['kind']}/{d['metadata']['name']} may reach the converter"
    # Anything else admitted must be another namespace's monitoring, never "everyone".
    for peer in admitted:
        assert peer, "an empty peer admits every pod"
        if "namespaceSelector" in peer:
            assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}


def test_autoscalers_target_the_converter(rendered: Rendered):
    targets = [d["spec"]["scaleTargetRef"] for d in rendered.of_kind("HorizontalPodAutoscaler") + rendered.of_kind("ScaledObject")]
    assert len(targets) == 1, "exactly one autoscaler (KEDA's ScaledObject or the HPA, never both)"
    assert targets[0]["kind"] == "Deployment" and rendered.get("Deployment", targets[0]["name"])


def test_keda_scales_on_the_video_queue(rendered: Rendered):
    for so in rendered.of_kind("ScaledObject"):
        triggers = so["spec"]["triggers"]
        rabbit = [t for t in triggers if t["type"] == "rabbitmq"]
        assert rabbit and rabbit[0]["metadata"]["queueName"] == "video"
        auth = rabbit[0]["authenticationRef"]["name"]
        assert rendered.get("TriggerAuthentication", auth)
        assert so["spec"]["fallback"]["replicas"] >= 1


def test_converter_is_hardened_and_outlives_a_job(rendered: Rendered):
    converter = rendered.get("Deployment", "converter")
    spec = pod_spec(converter)
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    assert {"livenessProbe", "readinessProbe"} <= set(container)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Kubernetes must wait longer than the converter lets running jobs go on after SIGTERM
    # (VID2MP3_SHUTDOWN_GRACE_SECS), with time left to hand unfinished jobs back to the queue.
    config = rendered.get("ConfigMap", next(
        e["valueFrom"]["configMapKeyRef"]["name"] for e in container["env"] if e["name"] == "VID2MP3_SHUTDOWN_GRACE_SECS"))
    grace = int(config["data"]["converter-shutdown-grace-secs"])
    assert grace >= 300, "long enough for a typical job to finish rather than be redone"
    assert spec["terminationGracePeriodSeconds"] >= grace + 30
    env = {e["name"] for e in container["env"]}
    assert {"VID2MP3_MONGO_URL", "VID2MP3_MONGO_DB", "VID2MP3_AMQP_URL", "VID2MP3_REDIS_URL",
            "VID2MP3_STORAGE_LISTEN", "VID2MP3_STORAGE_TOKEN"} <= env


def test_stateful_services_keep_their_data(rendered: Rendered):
    names = {s["metadata"]["name"] for s in rendered.of_kind("StatefulSet")}
    assert names == {"mysql", "rabbitmq", "redis", "mongodb"}
    for sts in rendered.of_kind("StatefulSet"):
        assert sts["spec"]["volumeClaimTemplates"], sts["metadata"]["name"]
        assert rendered.get("Service", sts["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_migrations_job_runs_the_migrate_binary_with_its_url(rendered: Rendered):
    job = rendered.get("Job", "vid2mp3-migrate")
    (container,) = pod_spec(job)["containers"]
    assert "migrate" in container["image"]
    # The variables migrations/src/main.rs reads (clap `env = "..."`), read from the source now.
    source = (REPO / "migrations" / "src" / "main.rs").read_text()
    known = set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', source))
    assert "VID2MP3_MYSQL_URL" in known
    env = {e["name"] for e in container["env"]}
    assert "VID2MP3_MYSQL_URL" in env
    assert env - known <= {"RUST_LOG"}, f"the Job sets variables vid2mp3-migrate does not read: {env - known}"
