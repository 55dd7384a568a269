"""SpinApps and SpinAppExecutors against the CRDs of spin-operator v0.6.1, read from
../shared/reference/spinkube/ (beside the repository, never copied into it), or where that is absent
from spin-operator's Go module, which deploy/tests/run fetches.

The API server silently drops fields a CRD's schema does not name (pruning), so a misspelt field would
not fail on a cluster either: besides the JSON-schema check, every field must be one the schema knows."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from conftest import K8S, REFERENCE, Rendered, spinkube_crds

CRDS = {"SpinApp": "spinapps.crd.yaml", "SpinAppExecutor": "spinappexecutors.crd.yaml"}


def _schema(kind: str) -> dict:
    path = spinkube_crds().get(kind)
    if path is None:
        pytest.skip(f"SpinKube CRDs found neither at {REFERENCE} (../shared/reference/spinkube beside the "
                    f"repository) nor in spin-operator's Go module (run deploy/tests/run); not checked")
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def _unknown_fields(value, schema: dict, path: str = "") -> list[str]:
    """Fields the API server would prune: not in `properties`, and no additionalProperties/preserve."""
    found = []
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return found
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if props is not None and key in props:
                found += _unknown_fields(sub, props[key], f"{path}/{key}")
            elif isinstance(extra, dict):
                found += _unknown_fields(sub, extra, f"{path}/{key}")
            elif props is not None:
                found.append(f"{path}/{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{path}/{i}")
    return found


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_custom_resources_match_the_spinkube_crd(rendered: Rendered, kind: str):
    schema = _schema(kind)
    docs = rendered.of_kind(kind)
    assert docs, f"{rendered.overlay} renders no {kind}"
    for doc in docs:
        assert doc["apiVersion"] == "core.spinkube.dev/v1alpha1"
        jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
        assert _unknown_fields(doc, schema) == [], f"{kind}/{doc['metadata']['name']}: fields the CRD does not know"


def test_the_crd_check_catches_a_misspelt_field():
    schema = _schema("SpinApp")
    bad = {"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp", "metadata": {"name": "x"},
           "spec": {"image": "i", "executor": "e", "replica": 2}}
    assert _unknown_fields(bad, schema) == ["/spec/replica"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**bad, "spec": {"executor": "e"}}, schema, cls=jsonschema.Draft7Validator)


def test_spinapps_use_an_executor_the_overlay_defines(rendered: Rendered):
    executors = {d["metadata"]["name"]: d for d in rendered.of_kind("SpinAppExecutor")}
    shim = yaml.safe_load((K8S / "cluster" / "shim-spin.yaml").read_text())
    for app in rendered.of_kind("SpinApp"):
        executor = executors.get(app["spec"]["executor"])
        assert executor, f"SpinApp {app['metadata']['name']} names executor {app['spec']['executor']!r}"
        assert executor["spec"]["createDeployment"] is True
        config = executor["spec"]["deploymentConfig"]
        # spin-operator takes exactly one of the two (it refuses a Deployment with neither).
        assert ("spinImage" in config) != ("runtimeClassName" in config), config
        if "spinImage" in config:
            # runtime-host, from deploy/images/native.Dockerfile's runtime-host target.
            repository, tag = config["spinImage"].rsplit(":", 1)
            assert repository.endswith("vid2mp3/runtime-host") and tag != "latest", config["spinImage"]
        else:
            # The RuntimeClass that runtime-class-manager makes from deploy/k8s/cluster/shim-spin.yaml.
            assert config["runtimeClassName"] == shim["spec"]["runtimeClass"]["name"]


def test_the_shim_is_the_default_and_spin_image_is_an_overlay(rendered: Rendered):
    executors = {d["metadata"]["name"]: d for d in rendered.of_kind("SpinAppExecutor")}
    used = {app["spec"]["executor"] for app in rendered.of_kind("SpinApp")}
    kinds = {"spinImage" if "spinImage" in executors[e]["spec"]["deploymentConfig"] else "shim" for e in used}
    # One executor for every SpinApp of an overlay: chained components share a pod either way.
    assert kinds == ({"spinImage"} if rendered.overlay == "spin-image" else {"shim"}), (rendered.overlay, used)
