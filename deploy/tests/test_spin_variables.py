"""The SpinApps and spin.toml agree. spin.toml is read now (tomllib), not remembered: when a variable
is added to or removed from spin.toml, these fail until the SpinApps in deploy/k8s say the same.

- each SpinApp sets exactly the variables its own components read (their [component.*.variables],
  allowed_outbound_hosts and Redis trigger addresses): none missing, and no other component's secret;
- no variable is required (Spin refuses to start an app while any required variable of the whole app
  has no value, whichever components it runs), unless every SpinApp sets it;
- a variable spin.toml marks `secret = true` comes from a Secret, never a literal or a ConfigMap;
- the SpinApps' `components` name spin.toml's components, and together run each exactly once;
- addresses in spin.toml that the cluster must reach are variables, not loopback literals."""

from __future__ import annotations

import re

import pytest
from conftest import Rendered

TEMPLATE = re.compile(r"^\{\{\s*([a-z0-9_]+)\s*\}\}$")
LOOPBACK = re.compile(r"//(127\.0\.0\.1|localhost|\[::1\])([:/]|$)")


def declared(spin_manifest: dict) -> dict[str, dict]:
    return spin_manifest.get("variables", {})


def test_spin_toml_declares_variables(spin_manifest):
    assert declared(spin_manifest), "spin.toml declares no [variables]?"
    for name in declared(spin_manifest):
        # spin-operator turns a name into SPIN_VARIABLE_<NAME>; Spin names are lowercase, digits, `_`.
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name


REFERENCE = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")


def needed_by(spin_manifest: dict, components: list[str]) -> set[str]:
    """The application variables `components` read: in their component variables, their allowed
    outbound hosts, and the addresses and channels of their Redis triggers."""
    names: set[str] = set()
    for name in components:
        component = spin_manifest["component"][name]
        for template in component.get("variables", {}).values():
            names |= set(REFERENCE.findall(template))
        for host in component.get("allowed_outbound_hosts", []):
            names |= set(REFERENCE.findall(host))
    default_address = spin_manifest.get("application", {}).get("trigger", {}).get("redis", {}).get("address", "")
    for trigger in spin_manifest.get("trigger", {}).get("redis", []):
        if trigger["component"] in components:
            names |= set(REFERENCE.findall(trigger.get("address", default_address)))
            names |= set(REFERENCE.findall(trigger["channel"]))
    return names


def test_each_spinapp_sets_exactly_the_variables_its_components_read(rendered: Rendered, spin_manifest):
    for app in rendered.of_kind("SpinApp"):
        names = [v["name"] for v in app["spec"].get("variables", [])]
        assert len(names) == len(set(names)), f"{app['metadata']['name']}: a variable is set twice: {names}"
        have = set(names)
        want = needed_by(spin_manifest, app["spec"]["components"])
        assert want <= set(declared(spin_manifest)), f"spin.toml uses undeclared variables {want - set(declared(spin_manifest))}"
        assert have == want, (
            f"SpinApp {app['metadata']['name']} ({rendered.overlay}) runs {app['spec']['components']}: "
            f"missing {sorted(want - have)}, read by none of its components {sorted(have - want)}"
        )


def test_no_spinapp_gets_another_components_secret(rendered: Rendered, spin_manifest):
    """Said separately from the exact list above because it is the point of splitting them: a pod
    holds only the credentials of the components it runs."""
    secret = {n for n, spec in declared(spin_manifest).items() if spec.get("secret")}
    for app in rendered.of_kind("SpinApp"):
        mine = needed_by(spin_manifest, app["spec"]["components"])
        given = {v["name"] for v in app["spec"].get("variables", [])}
        assert (given & secret) <= mine, f"{app['metadata']['name']} gets {sorted((given & secret) - mine)}"


def test_every_declared_variable_is_read_by_some_spinapp(rendered: Rendered, spin_manifest):
    read = set()
    for app in rendered.of_kind("SpinApp"):
        read |= needed_by(spin_manifest, app["spec"]["components"])
    unused = set(declared(spin_manifest)) - read
    assert not unused, f"spin.toml declares variables no component reads: {sorted(unused)}"


def test_required_variables_are_set_by_every_spinapp(rendered: Rendered, spin_manifest):
    """Spin 3.6.3 checks at start-up that every required variable of the application resolves
    (crates/trigger/src/cli/variable.rs, VariablesValidatorHook) and resolves them all again for each
    outbound request (factor-outbound-networking: `resolver.prepare()`), whichever components the app
    keeps (`retain_components` drops components and triggers, not variables)."""
    required = {n for n, spec in declared(spin_manifest).items() if "default" not in spec}
    for app in rendered.of_kind("SpinApp"):
        given = {v["name"] for v in app["spec"].get("variables", [])}
        assert required <= given, (
            f"{app['metadata']['name']} does not set the required {sorted(required - given)}: give them "
            "a default (an empty one for a secret the components check) or set them on every SpinApp"
        )


def test_each_variable_has_exactly_one_source(rendered: Rendered):
    for app in rendered.of_kind("SpinApp"):
        for v in app["spec"].get("variables", []):
            sources = [k for k in ("value", "valueFrom") if k in v]
            assert len(sources) == 1, f"{app['metadata']['name']}: {v['name']} has {sources}"
            if "valueFrom" in v:
                assert len(v["valueFrom"]) == 1 and set(v["valueFrom"]) <= {"secretKeyRef", "configMapKeyRef"}


def test_secret_variables_come_from_secrets(rendered: Rendered, spin_manifest):
    secret = {n for n, spec in declared(spin_manifest).items() if spec.get("secret")}
    for app in rendered.of_kind("SpinApp"):
        for v in app["spec"].get("variables", []):
            if v["name"] in secret:
                assert "secretKeyRef" in v.get("valueFrom", {}), (
                    f"{app['metadata']['name']}: {v['name']} is secret in spin.toml but not read from a Secret"
                )


def test_spinapps_run_each_component_exactly_once(rendered: Rendered, spin_manifest):
    components = set(spin_manifest["component"])
    run = [c for app in rendered.of_kind("SpinApp") for c in app["spec"].get("components", sorted(components))]
    assert sorted(run) == sorted(components), f"spin.toml has {sorted(components)}; the SpinApps run {sorted(run)}"


def test_chained_components_share_a_spinapp(rendered: Rendered, spin_manifest):
    """Service chaining (http://<component>.spin.internal) works only inside one Spin app."""
    for app in rendered.of_kind("SpinApp"):
        retained = set(app["spec"].get("components", spin_manifest["component"]))
        for name in retained:
            for host in spin_manifest["component"][name].get("allowed_outbound_hosts", []):
                m = re.match(r"^https?://([a-z0-9_-]+)\.spin\.internal", host)
                if m:
                    assert m.group(1) in retained, f"{name} chains to {m.group(1)}, which {app['metadata']['name']} does not run"


def test_all_spinapps_run_one_image(rendered: Rendered):
    assert len({app["spec"]["image"] for app in rendered.of_kind("SpinApp")}) == 1


def test_only_the_notifier_spinapp_has_no_http_and_one_replica(rendered: Rendered, spin_manifest):
    http_components = {t["component"] for t in spin_manifest.get("trigger", {}).get("http", [])}
    for app in rendered.of_kind("SpinApp"):
        has_http = bool(set(app["spec"]["components"]) & http_components)
        if has_http:
            assert app["spec"]["checks"]["readiness"]["httpGet"]["path"] == "/healthz"
        else:
            # Redis pub/sub gives every subscriber every message: a second replica would double the work.
            assert "checks" not in app["spec"] and app["spec"]["replicas"] == 1


def test_redis_trigger_address_can_point_into_the_cluster(spin_manifest):
    """In a pod, 127.0.0.1 is the pod itself: the notifier's trigger must take its Redis address from a
    variable (Spin 3.6 resolves `{{ var }}` in [application.trigger.redis] and [[trigger.redis]] addresses)."""
    default = spin_manifest.get("application", {}).get("trigger", {}).get("redis", {}).get("address")
    literal = []
    for trigger in spin_manifest.get("trigger", {}).get("redis", []):
        address = trigger.get("address", default)
        m = TEMPLATE.match(address or "")
        if m:
            assert m.group(1) in declared(spin_manifest), f"{address} names an undeclared variable"
        else:
            literal.append(f"{trigger['component']}: {address}")
    assert not literal, (
        "spin.toml's Redis trigger address is a literal, so the notifier cannot subscribe inside "
        f"Kubernetes: {literal}. Give it as a variable: address = \"{{{{ notifier_redis_url }}}}\"."
    )


def test_redis_and_mysql_addresses_name_each_components_own_account(spin_manifest):
    """Least privilege: a component's Redis and MySQL URLs are variables of its own (each holds its own
    account's password), secret, and never shared with another component."""
    seen: dict[str, str] = {}
    for name, component in spin_manifest["component"].items():
        for key in ("redis_url", f"{name}_db_url"):
            template = component.get("variables", {}).get(key)
            if template is None:
                continue
            (var,) = REFERENCE.findall(template)
            assert declared(spin_manifest)[var].get("secret"), f"{var} carries a password: mark it secret"
            assert var not in seen, f"{name} and {seen.get(var)} share {var}: one account each"
            seen[var] = name


def test_outbound_hosts_are_not_loopback(spin_manifest):
    """allowed_outbound_hosts such as mysql://127.0.0.1:3306 work on a laptop and nowhere in a cluster."""
    loopback = [
        f"{name}: {host}"
        for name, component in spin_manifest["component"].items()
        for host in component.get("allowed_outbound_hosts", [])
        if LOOPBACK.search(host)
    ]
    assert not loopback, f"spin.toml allows loopback-only outbound hosts, unreachable from a pod: {loopback}"


HOST_PORT = re.compile(r"^[a-z][a-z0-9+.-]*://[A-Za-z0-9.-]+(:[0-9]+)?$")


def _variable_values(rendered: Rendered, app: dict) -> dict[str, tuple[str, str | None]]:
    """name -> (where from, value when it is known offline: a literal or a ConfigMap key)."""
    values = {}
    for v in app["spec"].get("variables", []):
        if "value" in v:
            values[v["name"]] = ("value", v["value"])
        elif "configMapKeyRef" in v["valueFrom"]:
            ref = v["valueFrom"]["configMapKeyRef"]
            values[v["name"]] = ("ConfigMap", rendered.get("ConfigMap", ref["name"])["data"][ref["key"]])
        else:
            values[v["name"]] = ("Secret", None)
    return values


def test_outbound_hosts_made_of_variables_are_valid_hosts_in_the_cluster(rendered: Rendered, spin_manifest):
    """Spin accepts only scheme://host[:port] in allowed_outbound_hosts; a variable used there must hold
    exactly that (no password, no path) and must not point at loopback."""
    for app in rendered.of_kind("SpinApp"):
        values = _variable_values(rendered, app)
        for name in app["spec"]["components"]:
            for host in spin_manifest["component"][name].get("allowed_outbound_hosts", []):
                names = re.findall(r"\{\{\s*([a-z0-9_]+)\s*\}\}", host)
                if not names:
                    continue
                expanded = host
                for var in names:
                    source, value = values[var]
                    assert source != "Secret", f"{var} is an allowed outbound host of {name}: a host is not a secret"
                    expanded = re.sub(r"\{\{\s*" + var + r"\s*\}\}", value, expanded)
                assert HOST_PORT.match(expanded), f"{name}: {host} becomes {expanded!r}, not scheme://host:port"
                assert not LOOPBACK.search(expanded), f"{name}: {host} becomes {expanded!r}"


def test_gateway_and_converter_agree_on_the_upload_limit(rendered: Rendered, spin_manifest):
    if "max_upload_bytes" not in declared(spin_manifest):
        pytest.skip("spin.toml has no max_upload_bytes")
    from conftest import pod_spec

    (container,) = pod_spec(rendered.get("Deployment", "converter"))["containers"]
    (env,) = [e for e in container["env"] if e["name"] == "VID2MP3_MAX_UPLOAD_BYTES"]
    setting = [v for app in rendered.of_kind("SpinApp") for v in app["spec"]["variables"] if v["name"] == "max_upload_bytes"]
    assert setting, "no SpinApp sets max_upload_bytes (the gateway reads it)"
    for var in setting:
        assert var["valueFrom"] == env["valueFrom"]
