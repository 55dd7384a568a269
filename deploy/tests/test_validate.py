"""Kubernetes' own kinds validate strictly (unknown fields are errors) against the schemas that
kubernetes-validate bundles; SpinKube's kinds validate against the CRDs in ../shared/reference/."""

from __future__ import annotations

import os

import kubernetes_validate
import pytest
from conftest import CUSTOM_KINDS, Rendered

# The Kubernetes version to validate against: one that kubernetes-validate bundles, and that current
# minikube and managed clusters run.
K8S_VERSION = os.environ.get("VID2MP3_K8S_VERSION", "1.34.0")


def test_the_kubernetes_version_is_bundled():
    # Raises SchemaNotFoundError when kubernetes-validate has no schemas for K8S_VERSION.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, K8S_VERSION, strict=True
    )


def test_core_resources_validate_strictly(rendered: Rendered):
    errors = []
    checked = 0
    for doc in rendered.docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in CUSTOM_KINDS:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: {doc['apiVersion']} is not a Kubernetes {K8S_VERSION} kind (add it to CUSTOM_KINDS with a check of its own?)")
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            errors.append(f"{name}: {path}: {e.message}")
    assert errors == []
    assert checked >= 20


def test_custom_kinds_are_only_the_known_ones(rendered: Rendered):
    """Kinds from API groups outside Kubernetes (a group with a dot, not *.k8s.io) must each have a check."""
    custom = set()
    for d in rendered.docs:
        group = d["apiVersion"].rpartition("/")[0]
        if "." in group and not group.endswith(".k8s.io"):
            custom.add((d["apiVersion"], d["kind"]))
    assert custom <= CUSTOM_KINDS


def test_a_broken_manifest_is_caught():
    """The validator really is strict: a misspelt field fails."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "replica": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
