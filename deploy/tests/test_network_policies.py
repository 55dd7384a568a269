"""NetworkPolicies deny both directions by default and open exactly the connections the application
makes: each workload reaches its own backends and nothing else, every egress hole has the ingress
admission on the other side (and the other way round: an admission without a hole is a connection that
default-deny egress would silently break), and DNS works for every pod."""

from __future__ import annotations

from conftest import Rendered, pod_labels

# What each workload (its pods' app.kubernetes.io/name) must reach inside the namespace: (workload, port).
# The notifier's mail API is the overlay's: Mailpit on minikube, an HTTPS API outside the cluster in
# production (see EXTERNAL).
BACKENDS = {
    "vid2mp3-http": {("vid2mp3-mysql", 3306), ("vid2mp3-redis", 6379), ("vid2mp3-converter", 8081)},
    "vid2mp3-notifier": {("vid2mp3-mysql", 3306), ("vid2mp3-redis", 6379)},
    "vid2mp3-converter": {("vid2mp3-mongodb", 27017), ("vid2mp3-rabbitmq", 5672), ("vid2mp3-redis", 6379)},
    "vid2mp3-migrate": {("vid2mp3-mysql", 3306)},
}
MAIL_API = {
    "minikube": {("vid2mp3-mailpit", 8025)},
    "production": set(),
    "spin-image": set(),
}
# Connections to outside the cluster, by overlay: (workload, port).
# spin-image: production, plus the SpinApps' pods pulling their app image (runtime-host does, not the
# kubelet) from a registry over HTTPS.
EXTERNAL = {
    "minikube": set(),
    "production": {("vid2mp3-notifier", 443), ("vid2mp3-converter", 443)},
    "spin-image": {("vid2mp3-notifier", 443), ("vid2mp3-http", 443), ("vid2mp3-converter", 443)},
}
# What Prometheus, in the `monitoring` namespace, scrapes, by overlay: (workload, port). The converter's
# /metrics is on its storage port; runtime-host's on its own listener (9464), which only the spin-image
# overlay runs (the shim's Spin has no such listener).
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
SCRAPED = {
    "minikube": set(),
    "production": {("vid2mp3-converter", 8081)},
    "spin-image": {("vid2mp3-converter", 8081), ("vid2mp3-http", 9464), ("vid2mp3-notifier", 9464)},
}


def _workloads(rendered: Rendered) -> dict[str, dict]:
    """app.kubernetes.io/name → the pods' labels, for every workload of the overlay."""
    found = {}
    for d in rendered.docs:
        labels = pod_labels(d)
        if labels is not None and "app.kubernetes.io/name" in labels:
            found[labels["app.kubernetes.io/name"]] = labels
    return found


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _policies(rendered: Rendered, direction: str, labels: dict) -> list[dict]:
    return [
        p for p in rendered.of_kind("NetworkPolicy")
        if direction in p["spec"].get("policyTypes", []) and _selects(p["spec"]["podSelector"], labels)
    ]


def _in_namespace_peers(rule: dict, key: str) -> list[dict]:
    return [peer for peer in rule.get(key, []) if "podSelector" in peer and "namespaceSelector" not in peer]


def _ports(rule: dict) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


def egress_in_namespace(rendered: Rendered, name: str) -> set[tuple[str, int]]:
    workloads = _workloads(rendered)
    reached = set()
    for policy in _policies(rendered, "Egress", workloads[name]):
        for rule in policy["spec"].get("egress", []):
            for peer in _in_namespace_peers(rule, "to"):
                for target, labels in workloads.items():
                    if _selects(peer["podSelector"], labels):
                        reached |= {(target, port) for port in _ports(rule)}
    return reached


def ingress_admits(rendered: Rendered, target: str, source: str, port: int) -> bool:
    workloads = _workloads(rendered)
    for policy in _policies(rendered, "Ingress", workloads[target]):
        for rule in policy["spec"].get("ingress", []):
            if port not in _ports(rule):
                continue
            if any(_selects(peer["podSelector"], workloads[source]) for peer in _in_namespace_peers(rule, "from")):
                return True
    return False


def test_egress_and_ingress_are_denied_by_default(rendered: Rendered):
    for direction in ("Ingress", "Egress"):
        deny = [
            p for p in rendered.of_kind("NetworkPolicy")
            if p["spec"]["podSelector"] == {} and p["spec"].get("policyTypes") == [direction]
            and direction.lower() not in p["spec"]
        ]
        assert deny, f"{rendered.overlay}: no default-deny {direction} policy"


def test_every_pod_may_resolve_names(rendered: Rendered):
    dns = [
        rule
        for p in rendered.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"] == {} and "Egress" in p["spec"].get("policyTypes", [])
        for rule in p["spec"].get("egress", [])
        if {(q["port"], q["protocol"]) for q in rule.get("ports", [])} == {(53, "UDP"), (53, "TCP")}
    ]
    assert len(dns) == 1, "one egress rule for DNS (UDP and TCP 53), for every pod"
    (peer,) = dns[0]["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_policies_over_every_pod_open_nothing_but_dns(rendered: Rendered):
    for p in rendered.of_kind("NetworkPolicy"):
        if p["spec"]["podSelector"] != {}:
            continue
        assert "ingress" not in p["spec"], f"{p['metadata']['name']} admits something to every pod"
        for rule in p["spec"].get("egress", []):
            assert {q["port"] for q in rule.get("ports", [])} == {53}, f"{p['metadata']['name']} opens more than DNS"


def test_each_workload_reaches_exactly_its_backends(rendered: Rendered):
    workloads = _workloads(rendered)
    for name in workloads:
        want = set(BACKENDS.get(name, set()))
        if name == "vid2mp3-notifier":
            want |= MAIL_API[rendered.overlay]
        have = egress_in_namespace(rendered, name)
        assert have == want, f"{rendered.overlay}: {name} may reach {sorted(have)}, should reach {sorted(want)}"


def test_only_the_expected_workloads_leave_the_cluster(rendered: Rendered):
    workloads = _workloads(rendered)
    leaving = set()
    for name, labels in workloads.items():
        for policy in _policies(rendered, "Egress", labels):
            for rule in policy["spec"].get("egress", []):
                for peer in rule.get("to", [{}]):
                    if "ipBlock" in peer or peer == {}:
                        assert peer, f"{policy['metadata']['name']}: an empty peer opens everything"
                        block = peer["ipBlock"]
                        # Never back into the cluster's or the cloud's private addresses through this door.
                        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(block.get("except", []))
                        leaving |= {(name, port) for port in _ports(rule)}
                if "to" not in rule:
                    raise AssertionError(f"{policy['metadata']['name']}: an egress rule without `to` opens everything")
    assert leaving == EXTERNAL[rendered.overlay], f"{rendered.overlay}: {sorted(leaving)}"


def test_every_egress_hole_is_admitted_on_the_other_side(rendered: Rendered):
    for name in _workloads(rendered):
        for target, port in egress_in_namespace(rendered, name):
            assert ingress_admits(rendered, target, name, port), (
                f"{rendered.overlay}: {name} may connect to {target}:{port}, but {target} does not admit it"
            )


def test_every_admission_has_its_egress_hole(rendered: Rendered):
    """An ingress rule for a client the egress rules forgot is a connection that fails in the cluster."""
    workloads = _workloads(rendered)
    for target, labels in workloads.items():
        for policy in _policies(rendered, "Ingress", labels):
            for rule in policy["spec"].get("ingress", []):
                for peer in _in_namespace_peers(rule, "from"):
                    for source, source_labels in workloads.items():
                        if not _selects(peer["podSelector"], source_labels):
                            continue
                        for port in _ports(rule):
                            assert (target, port) in egress_in_namespace(rendered, source), (
                                f"{rendered.overlay}: {target} admits {source} on {port}, which {source} may not send to"
                            )


def _pod_annotations(doc: dict) -> dict:
    if doc["kind"] == "SpinApp":
        return doc["spec"].get("podAnnotations", {})
    return doc["spec"]["template"]["metadata"].get("annotations", {})


def test_the_scraper_reaches_exactly_the_metrics_ports(rendered: Rendered):
    workloads = _workloads(rendered)
    admitted = set()
    for name, labels in workloads.items():
        for policy in _policies(rendered, "Ingress", labels):
            for rule in policy["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    if peer.get("namespaceSelector", {}).get("matchLabels") == MONITORING:
                        assert "podSelector" not in peer, f"{policy['metadata']['name']}: scraped by one pod only?"
                        admitted |= {(name, port) for port in _ports(rule)}
    assert admitted == SCRAPED[rendered.overlay], f"{rendered.overlay}: monitoring may reach {sorted(admitted)}"


def test_scraped_pods_tell_prometheus_their_metrics_port(rendered: Rendered):
    annotated = {}
    for d in rendered.docs:
        labels = pod_labels(d)
        if labels is None or "app.kubernetes.io/name" not in labels:
            continue
        annotations = _pod_annotations(d)
        if annotations.get("prometheus.io/scrape") == "true":
            assert annotations.get("prometheus.io/path") == "/metrics", d["metadata"]["name"]
            annotated[labels["app.kubernetes.io/name"]] = int(annotations["prometheus.io/port"])
    for name, port in SCRAPED[rendered.overlay]:
        assert annotated.get(name) == port, f"{rendered.overlay}: {name}'s pods do not point Prometheus at {port}"
    if SCRAPED[rendered.overlay]:
        assert set(annotated.items()) == SCRAPED[rendered.overlay], f"{rendered.overlay}: {annotated}"
