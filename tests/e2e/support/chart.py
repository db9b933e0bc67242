"""Renders the chart for the local stack and pulls out what the tests need: the workloads to apply, and
every PromQL expression the chart ships (dashboard panels and variables, recording and alerting rules,
KEDA triggers, prometheus-adapter rules), each named after where it comes from."""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests import helm as helm_tools

RELEASE = helm_tools.RELEASE
SUBCHARTS = {"vllm": "vllm", "autoscaling": "autoscaling", "observability": "observability"}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def stack_values(models: list[dict[str, Any]], *, mode: str = "keda", autoscaling: dict[str, Any] | None = None,
                 observability: dict[str, Any] | None = None) -> dict[str, Any]:
    """Umbrella values: the given models, autoscaling in `mode`, observability on, storage and mesh off."""
    return {
        "global": {"models": models, "autoscaling": {"enabled": mode != "none", "mode": mode},
                   "storage": {"enabled": False}, "mesh": {"enabled": False}},
        "vllm": {"enabled": True},
        "autoscaling": deep_merge({"prometheusAdapter": {"rulesConfigMap": True}}, autoscaling or {}),
        "observability": deep_merge({"enabled": True}, observability or {}),
    }


def render(values: dict[str, Any], namespace: str, workdir: Path) -> list[helm_tools.Manifest]:
    """helm template of the umbrella; while sibling subcharts are missing from the tree, the subcharts
    this suite needs are rendered one by one with the same global values."""
    workdir.mkdir(parents=True, exist_ok=True)
    r = helm_tools.render_values(values, workdir, name="umbrella", namespace=namespace)
    if r.ok:
        return r.manifests
    deps = yaml.safe_load((helm_tools.CHART / "Chart.yaml").read_text()).get("dependencies") or []
    incomplete = [d["name"] for d in deps
                  if not (helm_tools.CHART / "charts" / d["name"] / "Chart.yaml").is_file()]
    if not incomplete:
        raise RuntimeError(f"helm template failed:\n{r.stderr}")
    out: list[helm_tools.Manifest] = []
    for key, sub in SUBCHARTS.items():
        chart = helm_tools.CHART / "charts" / sub
        if not (chart / "Chart.yaml").is_file():
            continue
        sub_values = {"global": values["global"], **{k: v for k, v in values.get(key, {}).items()}}
        if sub == "observability":
            sub_values["enabled"] = True
        rs = helm_tools.render_values(sub_values, workdir, name=f"sub-{sub}", chart=chart, namespace=namespace)
        if not rs.ok:
            raise RuntimeError(f"helm template of subchart {sub} failed:\n{rs.stderr}")
        out += rs.manifests
    return out


def fullname(model: dict[str, Any]) -> str:
    return f"{RELEASE}-{model['name']}"[:52].rstrip("-")


def pod_selector(model: dict[str, Any]) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "server", "llm-stack.io/model": model["name"]}


def fallback_deployment(model: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The primary Deployment as docs/design.md names and labels it, for when the vllm subchart is absent."""
    labels = {**pod_selector(model), "llm-stack.io/track": "stable"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": fullname(model), "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [{"name": "vllm", "image": helm_tools.versions()["VLLM_SIM_IMAGE"],
                                "ports": [{"name": "http", "containerPort": 8000}],
                                "resources": {"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                                              "limits": {"nvidia.com/gpu": "1"}}}]}},
        },
    }


AUTOSCALERS = ("ScaledObject", "HorizontalPodAutoscaler")


def installable(manifests: list[helm_tools.Manifest], models: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Every rendered object except the autoscalers (the tests apply those when their scaler runs), plus a
    design.md-shaped primary Deployment for a model the render has none for (vllm subchart absent)."""
    out = [x.obj for x in manifests if x.kind not in AUTOSCALERS]
    for m in models:
        if not any(x.kind == "Deployment" and x.name == fullname(m) for x in manifests):
            out.append(fallback_deployment(m, namespace))
    return out


def kubectl_apply(kubeconfig: Path, objs: list[dict[str, Any]], namespace: str) -> None:
    text = "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objs)
    p = subprocess.run([helm_tools.tool("kubectl"), "--kubeconfig", str(kubeconfig), "-n", namespace, "apply",
                        "--server-side", "--force-conflicts", "-f", "-"], input=text, check=False, capture_output=True,
                       text=True, timeout=60)
    if p.returncode:
        raise RuntimeError(f"kubectl apply failed:\n{p.stderr}")


# --- PromQL the chart ships --------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    source: str   # e.g. "dashboard llm-stack-models / panel Request rate [A]"
    expr: str
    kind: str     # panel, variable, record, alert, keda, adapter

    def __str__(self) -> str:
        return self.source


def _panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in items:
        out.append(p)
        out += _panels(p.get("panels") or [])
    return out


_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.DOTALL)


def dashboard_exprs(manifests: list[helm_tools.Manifest]) -> list[Expr]:
    out = []
    for cm in manifests:
        if cm.kind != "ConfigMap":
            continue
        for key, text in (cm.obj.get("data") or {}).items():
            if not key.endswith(".json"):
                continue
            d = json.loads(text)
            name = key.removesuffix(".json")
            for v in (d.get("templating") or {}).get("list", []):
                if v.get("type") != "query":
                    continue
                q = v.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                m = _LABEL_VALUES.match(q or "")
                if m:
                    out.append(Expr(f"dashboard {name} / variable {v['name']}", m.group(1), "variable"))
            for p in _panels(d.get("panels") or []):
                for t in p.get("targets") or []:
                    if t.get("expr"):
                        out.append(Expr(f"dashboard {name} / panel {p.get('title')!r} [{t.get('refId', '?')}]",
                                        t["expr"], "panel"))
    return out


def rule_groups(manifests: list[helm_tools.Manifest]) -> list[dict[str, Any]]:
    return [g for m in manifests if m.kind == "PrometheusRule" for g in m.obj["spec"]["groups"]]


_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)(\s*)(?=[-+]?[0-9.])")


def as_bool(expr: str) -> str:
    """An alert expression with `bool` on each comparison against a number: returns every series the
    condition looks at (0 or 1) instead of only those that breach, so "returns data" is testable."""
    return _COMPARISON.sub(lambda m: f"{m.group(1)} bool{m.group(2) or ' '}", expr)


def rule_exprs(manifests: list[helm_tools.Manifest]) -> list[Expr]:
    out = []
    for g in rule_groups(manifests):
        for r in g["rules"]:
            if "record" in r:
                out.append(Expr(f"recording rule {r['record']}", r["expr"], "record"))
            else:
                model = (r.get("labels") or {}).get("model_name")
                tag = f" ({model})" if model else ""
                out.append(Expr(f"alert {r['alert']}{tag}", as_bool(r["expr"]), "alert"))
    return out


def keda_exprs(manifests: list[helm_tools.Manifest]) -> list[Expr]:
    out = []
    for so in manifests:
        if so.kind != "ScaledObject":
            continue
        for t in so.obj["spec"]["triggers"]:
            if t["type"] == "prometheus":
                out.append(Expr(f"ScaledObject {so.name} / trigger {t.get('name')}", t["metadata"]["query"], "keda"))
    return out


def adapter_config(manifests: list[helm_tools.Manifest]) -> dict[str, Any]:
    """prometheus-adapter's config file from the chart's rules (Helm-values shape: rules.custom/external)."""
    for cm in manifests:
        if cm.kind == "ConfigMap" and cm.name.endswith("-prometheus-adapter-rules"):
            rules = yaml.safe_load(cm.obj["data"]["prometheus-adapter-rules.yaml"])["rules"]
            return {"rules": rules.get("custom") or [], "externalRules": rules.get("external") or []}
    raise LookupError("no *-prometheus-adapter-rules ConfigMap rendered (autoscaling.prometheusAdapter.rulesConfigMap)")


def adapter_exprs(manifests: list[helm_tools.Manifest], namespace: str) -> list[Expr]:
    """Each adapter rule's seriesQuery, and its metricsQuery as the adapter expands it for one namespace."""
    cfg = adapter_config(manifests)
    out = []
    for kind, rules in (("custom", cfg["rules"]), ("external", cfg["externalRules"])):
        for i, r in enumerate(rules):
            name = r.get("name", {}).get("as", f"#{i}")
            series = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", r["seriesQuery"]).group(1)
            group = "namespace,pod" if kind == "custom" else "namespace"
            q = (r["metricsQuery"].replace("<<.Series>>", series)
                 .replace("<<.LabelMatchers>>", f'namespace="{namespace}"').replace("<<.GroupBy>>", group))
            out.append(Expr(f"prometheus-adapter {kind} rule {name} / seriesQuery", r["seriesQuery"], "adapter"))
            out.append(Expr(f"prometheus-adapter {kind} rule {name} / metricsQuery", q, "adapter"))
    return out


def grafana_substitute(expr: str, variables: dict[str, str], rate_interval: str) -> str:
    """Grafana's template variables ($var, ${var}, [[var]]) and interval macros replaced by values."""
    macros = {"__rate_interval": rate_interval, "__interval": rate_interval, "__range": rate_interval,
              **variables}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in macros:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return macros[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", sub, expr)
