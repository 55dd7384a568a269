"""The Grafana dashboard (deploy/grafana/vid2mp3.json) parses, and queries only metrics and labels
that exist: each metric name is looked for in the source that registers it (runtime-host's
registry prefixes its names with `runtime_host_`, the converter's with `vid2mp3_converter_`), so a
renamed metric fails here rather than leaving an empty panel."""

from __future__ import annotations

import json
import re

import yaml
from conftest import DEPLOY, REPO

DASHBOARD = DEPLOY / "grafana" / "vid2mp3.json"
# Registry prefix → the sources that register its metrics.
SOURCES = {
    "runtime_host_": REPO / "runtime-host" / "src",
    "vid2mp3_converter_": REPO / "converter" / "src",
}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
# Labels Prometheus adds (the scrape's target, a histogram's buckets), not the programs.
SCRAPE_LABELS = {"job", "instance", "pod", "namespace", "le"}


def _exprs(dashboard: dict) -> list[str]:
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [t["expr"] for t in inner.get("targets", [])]
    return found


def _source_text(prefix: str) -> str:
    return "\n".join(p.read_text() for p in sorted(SOURCES[prefix].rglob("*.rs")))


def test_the_dashboard_parses_and_covers_the_flow():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    exprs = _exprs(dashboard)
    assert exprs, "no queries"
    queried = " ".join(exprs)
    for prefix in SOURCES:
        assert prefix in queried, f"no panel for the {prefix}* metrics"
    # Every panel reads the data source the importer picks.
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_queried_metric_and_label_exists_in_the_source():
    dashboard = json.loads(DASHBOARD.read_text())
    texts = {prefix: _source_text(prefix) for prefix in SOURCES}
    for prefix, text in texts.items():
        assert f'"{prefix.rstrip("_")}"' in text, f"{SOURCES[prefix]} no longer registers under {prefix}"
    for expr in _exprs(dashboard):
        names = [n for n in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if n.startswith(tuple(SOURCES))]
        assert names, f"a query over no metric of ours: {expr}"
        for name in names:
            prefix = next(p for p in SOURCES if name.startswith(p))
            base = name[len(prefix):]
            candidates = [base] + [base[: -len(s)] for s in HISTOGRAM_SERIES if base.endswith(s)]
            assert any(f'"{c}"' in texts[prefix] for c in candidates), (
                f"{name} (in {expr!r}) is registered nowhere in {SOURCES[prefix]}"
            )
        text = "\n".join(texts[p] for p in SOURCES if any(n.startswith(p) for n in names))
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*\"", expr))
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            labels |= {label.strip() for label in group.split(",") if label.strip()}
        for label in labels - SCRAPE_LABELS:
            assert f'"{label}"' in text, f"label {label} (in {expr!r}) is given by no metric's source"


def test_the_scrape_job_keeps_the_annotated_pods():
    (job,) = yaml.safe_load((DEPLOY / "prometheus" / "scrape-vid2mp3.yaml").read_text())
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["vid2mp3"]
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep[0]["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"__metrics_path__", "__address__", "pod"} <= targets
