"""Alerting/recording rules load in Prometheus (promtool) and dashboards only query series that exist."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import helm
from tests.conftest import require

VLLM_METRICS = {
    line.strip()
    for line in (helm.DATA / "vllm_metrics.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
# Linkerd proxy metrics (linkerd.io/2/reference/proxy-metrics) the mesh dashboard may use.
LINKERD_METRICS = {
    "request_total", "response_total", "response_latency_ms_bucket", "response_latency_ms_sum",
    "response_latency_ms_count", "tcp_open_total", "tcp_close_total", "tcp_open_connections",
    "tcp_read_bytes_total", "tcp_write_bytes_total", "tcp_connection_duration_ms_bucket",
    "tcp_connection_duration_ms_sum", "tcp_connection_duration_ms_count", "route_request_total",
    "route_response_total", "route_response_latency_ms_bucket", "route_response_latency_ms_sum",
    "route_response_latency_ms_count", "inbound_http_authz_allow_total", "inbound_http_authz_deny_total",
    "inbound_tcp_authz_allow_total", "inbound_tcp_authz_deny_total", "inbound_tcp_authz_terminate_total",
    "outbound_http_route_request_duration_seconds_bucket", "outbound_http_route_request_duration_seconds_sum",
    "outbound_http_route_request_duration_seconds_count", "outbound_http_route_backend_requests_total",
    "outbound_http_route_backend_response_statuses_total", "outbound_http_balancer_endpoints",
}
# design.md: llm_stack:kv_cache_usage:ratio falls back to the pre-0.9.2 name, so rules (not dashboards) may use it.
LEGACY_IN_RULES = {"vllm:gpu_cache_usage_perc"}
ALWAYS = {"up"}

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
    "atan2", "inf", "nan", "start", "end",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$__\w+|\$\w+")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (functions, keywords, labels and durations removed)."""
    e = _GRAFANA_VAR.sub("x", expr)
    e = _STRING.sub('""', e)
    e = _BRACES.sub("{}", e)
    e = _RANGE.sub("", e)
    e = _GROUPING.sub("", e)
    names = set()
    for m in _IDENT.finditer(e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_metric_names_parser() -> None:
    q = 'sum by (model_name, le) (rate(vllm:e2e_request_latency_seconds_bucket{namespace="$ns",model_name=~"${model}"}[5m])) / on(model_name) group_left llm_stack:requests:rate5m > bool 0.5'
    assert metric_names(q) == {"vllm:e2e_request_latency_seconds_bucket", "llm_stack:requests:rate5m"}
    assert metric_names("histogram_quantile(0.95, sum(rate(x_bucket[5m])) by (le))") == {"x_bucket"}


# --- PrometheusRule -------------------------------------------------------------------------------------
def rule_groups(r: helm.Render) -> list[tuple[helm.Manifest, dict[str, Any]]]:
    return [(m, g) for m in r.of_kind("PrometheusRule") for g in m.obj["spec"].get("groups", [])]


def recorded(r: helm.Render) -> set[str]:
    return {rule["record"] for _, g in rule_groups(r) for rule in g.get("rules", []) if "record" in rule}


def test_prometheus_rules_pass_promtool(rendered: helm.Render, tmp_path: Path, overlay: str) -> None:
    rules = rendered.of_kind("PrometheusRule")
    if not rules:
        pytest.skip(f"{overlay} renders no PrometheusRule")
    promtool = require("promtool")
    for m in rules:
        path = tmp_path / f"{m.name}.yaml"
        path.write_text(yaml.safe_dump({"groups": m.obj["spec"]["groups"]}))
        proc = helm.run([promtool, "check", "rules", str(path)])
        assert proc.returncode == 0, f"{m}: promtool check rules:\n{proc.stdout}{proc.stderr}"


def test_rules_only_read_series_that_exist(rendered: helm.Render) -> None:
    allowed = VLLM_METRICS | LEGACY_IN_RULES | recorded(rendered) | ALWAYS
    for m, g in rule_groups(rendered):
        for rule in g.get("rules", []):
            unknown = {
                n for n in metric_names(str(rule["expr"]))
                if n not in allowed and not n.startswith("kube_") and n not in LINKERD_METRICS
            }
            name = rule.get("record") or rule.get("alert")
            assert not unknown, f"{m}: rule {name} reads {sorted(unknown)}, which nothing exports"


def test_alerts_have_runbook_and_severity(rendered: helm.Render) -> None:
    for m, g in rule_groups(rendered):
        for rule in g.get("rules", []):
            if "alert" in rule:
                assert rule.get("labels", {}).get("severity"), f"{m}: alert {rule['alert']} has no severity"
                assert rule.get("annotations", {}).get("summary") or rule.get("annotations", {}).get("description"), (
                    f"{m}: alert {rule['alert']} says nothing to the person paged"
                )


# --- dashboards ------------------------------------------------------------------------------------------
def dashboards(r: helm.Render) -> list[tuple[str, str]]:
    """(where, json text) of every dashboard in the rendered ConfigMaps."""
    out = []
    for m in r.of_kind("ConfigMap"):
        for key, text in (m.obj.get("data") or {}).items():
            if key.endswith(".json"):
                out.append((f"{m.name}/{key}", text))
    return out


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows hold their panels
    for row in dashboard.get("rows", []):  # the pre-5.0 layout
        out.extend(row.get("panels", []))
    return out


def test_observability_renders_dashboards(renders: dict[str, helm.Render]) -> None:
    found = [o for o, r in renders.items() if r.ok and dashboards(r)]
    assert found, "no overlay or scenario renders a dashboard ConfigMap"


def test_dashboards_are_valid_with_unique_panel_ids(rendered: helm.Render) -> None:
    for where, text in dashboards(rendered):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            pytest.fail(f"{where}: not JSON: {e}")
        assert d.get("title"), f"{where}: no title"
        assert d.get("uid"), f"{where}: no uid (Grafana would give it a new one on each load)"
        ids = [p.get("id") for p in panels(d)]
        assert None not in ids, f"{where}: a panel has no id"
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        assert not dupes, f"{where}: panel ids {dupes} are used twice"


def test_dashboards_only_query_series_that_exist(rendered: helm.Render) -> None:
    allowed = VLLM_METRICS | LINKERD_METRICS | recorded(rendered) | ALWAYS
    for where, text in dashboards(rendered):
        d = json.loads(text)
        exprs = [t.get("expr", "") for p in panels(d) for t in p.get("targets", [])]
        exprs += [v.get("query", {}).get("query", "") if isinstance(v.get("query"), dict) else str(v.get("query", ""))
                  for v in d.get("templating", {}).get("list", []) if v.get("type") == "query"]
        for e in exprs:
            # label_values(metric, label) in template variables names a metric too
            e = re.sub(r"label_values\(\s*([^,(){}]*(?:\{[^}]*\})?)\s*,[^)]*\)", r"\1", e)
            e = re.sub(r"label_values\([^,()]*\)", "", e)
            unknown = {
                n for n in metric_names(e)
                if n not in allowed and not n.startswith("kube_")
            }
            assert not unknown, f"{where}: queries {sorted(unknown)} which neither vLLM, Linkerd, kube-state-metrics nor our rules export: {e}"
            if "llm_stack:" in e:
                missing = {n for n in metric_names(e) if n.startswith("llm_stack:") and n not in recorded(rendered)}
                assert not missing, f"{where}: uses recording rules {sorted(missing)} that no PrometheusRule defines"
