"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and kube-controller-manager, built
from the Go module proxy by deploy/tests/run (VID2MP3_K8S_BIN), started on free loopback ports with
throwaway certificates and tokens, and stopped at the end of the session.

There is no scheduler, kubelet or node: objects are validated, admitted and stored exactly as on a real
cluster, and the controllers that need no node act on them (namespace deletion, garbage collection,
StatefulSets making their PVCs, service accounts). An audit log records every request with the user
that made it, so a test can tell what a script asked kubectl to do.

spin-operator's validating webhook is stood in for by `SpinKubeWebhook`, which applies the rules that
spin-operator v0.6.1 applies (internal/webhook/spinapp_validating.go, spinappexecutor_validating.go)."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

# Users of the test API server, one token each, so the audit log tells who asked for what. All are
# cluster admins (group system:masters): these tests are about what is asked, not about RBAC.
USERS = ("setup", "script", "controller-manager", "webhook")
# The kube context deploy/scripts/minikube uses (its profile name), and the user behind it.
SCRIPT_CONTEXT = "vid2mp3"

STARTUP_SECS = 120


def _decode(raw: bytes) -> dict:
    """The API server answers JSON, except for its health checks (`ok`)."""
    try:
        return json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return {"raw": raw.decode(errors="replace")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def k8s_bin() -> Path:
    """The binaries deploy/tests/run built; a clear failure when run another way."""
    value = os.environ.get("VID2MP3_K8S_BIN")
    if not value or not (Path(value) / "kube-apiserver").is_file():
        raise RuntimeError("VID2MP3_K8S_BIN does not name the Kubernetes binaries: run deploy/tests/run, which builds them")
    return Path(value)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr}")


def make_pki(d: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 (API server and webhook), a service-account key pair."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=vid2mp3-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "serving.key", "-out", "serving.csr", cwd=d)
    (d / "serving.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
    )
    _openssl("x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "serving.ext", "-out", "serving.crt", cwd=d)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key", cwd=d)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request, when it is answered (or, for a port-forward, when its stream starts).
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


@dataclass
class Cluster:
    dir: Path
    bin: Path
    server: str
    tokens: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    webhook: SpinKubeWebhook | None = None

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.dir / "audit.log"

    def kubeconfig(self, user: str) -> Path:
        """A kubeconfig whose current context (named SCRIPT_CONTEXT, as the minikube profile) is `user`."""
        path = self.dir / f"kubeconfig-{user}"
        if not path.exists():
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": self.server, "certificate-authority": str(self.ca)}}],
                "users": [{"name": user, "user": {"token": self.tokens[user]}}],
                "contexts": [{"name": SCRIPT_CONTEXT, "context": {"cluster": "test", "user": user}}],
                "current-context": SCRIPT_CONTEXT,
            }
            path.write_text(yaml.safe_dump(config))
        return path

    def kubectl(self, *args: str, user: str = "setup", input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig(user)), *args],
            input=input, capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def api(self, method: str, path: str, body: dict | None = None, user: str = "setup",
            content_type: str = "application/json") -> tuple[int, dict]:
        """One request to the API server; (status, decoded body)."""
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.tokens[user]}", "Content-Type": content_type,
                     "Accept": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read())

    def audit(self, user: str = "script") -> list[dict]:
        """Every request `user` made so far, in the order the API server answered them."""
        events = []
        with open(self.audit_log) as f:
            for line in f:
                event = json.loads(line)
                if event.get("user", {}).get("username") == user:
                    events.append(event)
        return events

    def audit_mark(self) -> int:
        """How many audit events exist now: pass it to `audit_since` to see only what came after."""
        with open(self.audit_log) as f:
            return sum(1 for _ in f)

    def audit_since(self, mark: int, user: str = "script") -> list[dict]:
        with open(self.audit_log) as f:
            lines = f.readlines()[mark:]
        return [e for e in map(json.loads, lines) if e.get("user", {}).get("username") == user]

    def wait_for(self, what: str, predicate, timeout: float = 60, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start(cluster: Cluster, name: str, args: list[str]) -> subprocess.Popen:
    log = open(cluster.dir / f"{name}.log", "w")
    process = subprocess.Popen([str(cluster.bin / name), *args], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    cluster.processes.append(process)
    return process


def _log_tail(cluster: Cluster, name: str) -> str:
    text = (cluster.dir / f"{name}.log").read_text(errors="replace")
    return text[-3000:]


def _wait_http(cluster: Cluster, name: str, process: subprocess.Popen, check) -> None:
    deadline = time.monotonic() + STARTUP_SECS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_log_tail(cluster, name)}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become ready in {STARTUP_SECS}s:\n{_log_tail(cluster, name)}")
        time.sleep(0.5)


def start_cluster(d: Path) -> Cluster:
    bin_dir = k8s_bin()
    d.mkdir(parents=True, exist_ok=True)
    make_pki(d)
    tokens = {user: os.urandom(16).hex() for user in USERS}
    (d / "tokens.csv").write_text("".join(f'{t},{u},{u},"system:masters"\n' for u, t in tokens.items()))
    (d / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
    cluster = Cluster(dir=d, bin=bin_dir, server=f"https://127.0.0.1:{api_port}", tokens=tokens)
    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer_port}"
        etcd = _start(cluster, "etcd", [
            "--name", "test", "--data-dir", str(d / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"test={peer_url}",
            # Throwaway data: no fsync, and no metrics listener beside the client one.
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        _wait_http(cluster, "etcd", etcd,
                   lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=2).status == 200)

        apiserver = _start(cluster, "kube-apiserver", [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={api_port}", "--advertise-address=127.0.0.1",
            # No node ever reaches the `kubernetes` Service's loopback address: do not publish it.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={d / 'apiserver-certs'}",
            f"--tls-cert-file={d / 'serving.crt'}", f"--tls-private-key-file={d / 'serving.key'}",
            f"--token-auth-file={d / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={d / 'sa.pub'}", f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            f"--audit-policy-file={d / 'audit-policy.yaml'}", f"--audit-log-path={cluster.audit_log}",
            "--profiling=false",
        ])
        _wait_http(cluster, "kube-apiserver", apiserver, lambda: cluster.api("GET", "/readyz")[0] == 200)

        controller_manager = _start(cluster, "kube-controller-manager", [
            f"--kubeconfig={cluster.kubeconfig('controller-manager')}",
            "--leader-elect=false", "--secure-port=0",
            # The ones that need no node. The service-account ones make each namespace's `default`
            # ServiceAccount, without which no pod is admitted.
            "--controllers=namespace-controller,garbage-collector-controller,statefulset-controller,"
            "serviceaccount-controller,serviceaccount-token-controller,persistentvolumeclaim-protection-controller",
            f"--service-account-private-key-file={d / 'sa.key'}", f"--root-ca-file={d / 'ca.crt'}",
        ])
        _wait_http(cluster, "kube-controller-manager", controller_manager,
                   lambda: cluster.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200)
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- CRDs ---------------------------------------------------------------------------------------------

def crd_files() -> dict[str, list[Path]]:
    """The CRDs of the operators deploy/ uses, from the Go modules deploy/tests/run fetched; SpinKube's
    from ../shared/reference/spinkube when that folder is there (the copy the offline checks read)."""
    found: dict[str, list[Path]] = {}
    for name, variable in (("spin-operator", "VID2MP3_SPIN_OPERATOR_SRC"),
                           ("runtime-class-manager", "VID2MP3_RUNTIME_CLASS_MANAGER_SRC"),
                           ("keda", "VID2MP3_KEDA_SRC")):
        src = os.environ.get(variable)
        if not src or not (Path(src) / "config" / "crd" / "bases").is_dir():
            raise RuntimeError(f"{variable} does not name {name}'s Go module: run deploy/tests/run, which fetches it")
        found[name] = sorted((Path(src) / "config" / "crd" / "bases").glob("*.yaml"))
    from conftest import spinkube_crds

    found["spin-operator"] = sorted(spinkube_crds().values())
    return found


def install_crds(cluster: Cluster) -> list[str]:
    names = []
    for files in crd_files().values():
        for path in files:
            cluster.kubectl("apply", "--server-side", "-f", str(path))
            names.append(yaml.safe_load(path.read_text())["metadata"]["name"])
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
    return names


# --- spin-operator's validating webhook, stood in for -------------------------------------------------

class SpinKubeWebhook:
    """spin-operator v0.6.1's validation rules, served as a validating admission webhook on loopback.

    SpinApp: its executor must exist in its namespace; replicas >= 1 unless autoscaling is enabled, and
    unset (0) when it is. SpinAppExecutor: deploymentConfig names runtimeClassName or spinImage, not both.
    Unlike spin-operator, which reads executors from an informer cache, this asks the API server, so a
    test sees the order itself and no lag."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.refusals: list[str] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = review["request"]
                message = webhook.check(request)
                if message:
                    webhook.refusals.append(message)
                response = {"uid": request["uid"], "allowed": message is None}
                if message:
                    response["status"] = {"code": 422, "reason": "Invalid", "message": message}
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": response}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cluster.dir / "serving.crt", cluster.dir / "serving.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def check(self, request: dict) -> str | None:
        obj = request["object"]
        kind = request["kind"]["kind"]
        name = obj["metadata"].get("name", "")
        spec = obj.get("spec", {})
        if kind == "SpinApp":
            problems = []
            executor = spec.get("executor", "")
            namespace = request.get("namespace", "")
            if not executor:
                problems.append('spec.executor: Invalid value: "": executor must be set')
            else:
                status, _ = self.cluster.api(
                    "GET", f"/apis/core.spinkube.dev/v1alpha1/namespaces/{namespace}/spinappexecutors/{executor}",
                    user="webhook")
                if status != 200:
                    problems.append(f'spec.executor: Invalid value: "{executor}": executor does not exist in namespace')
            replicas = spec.get("replicas", 0)
            if spec.get("enableAutoscaling") and replicas != 0:
                problems.append(f"spec.replicas: Invalid value: {replicas}: replicas cannot be set when autoscaling is enabled")
            if not spec.get("enableAutoscaling") and replicas < 1:
                problems.append(f"spec.replicas: Invalid value: {replicas}: replicas must be > 0")
            if problems:
                return f'SpinApp.core.spinkube.dev "{name}" is invalid: ' + ", ".join(problems)
        if kind == "SpinAppExecutor":
            config = spec.get("deploymentConfig")
            if config is not None:
                runtime_class, spin_image = config.get("runtimeClassName"), config.get("spinImage")
                if runtime_class is not None and spin_image is not None:
                    return f'SpinAppExecutor.core.spinkube.dev "{name}" is invalid: spec.deploymentConfig.runtimeClassName: runtimeClassName and spinImage are mutually exclusive'
                if runtime_class is None and spin_image is None:
                    return f'SpinAppExecutor.core.spinkube.dev "{name}" is invalid: spec.deploymentConfig.runtimeClassName: either runtimeClassName or spinImage must be set'
        return None

    def register(self) -> None:
        self.thread.start()
        ca_bundle = base64.b64encode(self.cluster.ca.read_bytes()).decode()
        port = self.server.server_address[1]

        def hook(name: str, resource: str) -> dict:
            return {
                "name": f"{name}.spinkube.test",
                "clientConfig": {"url": f"https://127.0.0.1:{port}/{resource}", "caBundle": ca_bundle},
                "rules": [{"apiGroups": ["core.spinkube.dev"], "apiVersions": ["v1alpha1"],
                           "operations": ["CREATE", "UPDATE"], "resources": [resource]}],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }

        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "spin-operator-rules"},
            "webhooks": [hook("vspinapp", "spinapps"), hook("vspinappexecutor", "spinappexecutors")],
        }
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(config))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
