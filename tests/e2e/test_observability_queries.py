"""Every PromQL expression the chart ships returns data from a Prometheus that scrapes the vLLM simulator
under load, the way the chart's ServiceMonitors would on a cluster.

The chart is rendered with two models; each Ready (KWOK) pod of their Deployments gets a simulator process
whose series carry the namespace/service/pod labels a ServiceMonitor attaches, and the ServiceMonitor's
metricRelabelings are applied. Recording and alerting rules come from the rendered PrometheusRule and run
in that Prometheus. Dashboard panels and variables (Grafana variables substituted), recording rules,
alert conditions (comparisons turned into `bool`, so healthy series count), KEDA triggers and the
prometheus-adapter rules are each a test case named after its source.
"""
from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import k8s

from .support import chart
from .support.sim import SimOptions
from .support.stack import Stack, local_stack

MODELS = [
    {"name": "obs-a", "model": "sim/model-one", "servedModelName": "model-one"},
    {"name": "obs-b", "model": "sim/model-two", "servedModelName": "model-two"},
]
RATE_INTERVAL = "15s"     # Grafana: max(4 x scrape interval, interval + scrape interval) with 1s scrapes
SETTLE_SECONDS = 75       # load time within which every expression must have returned data
# The mesh dashboard reads the Linkerd proxy's metrics; linkerd2-proxy (Rust) cannot be built or run here.
LINKERD_METRICS = re.compile(r"\b(request_total|response_total|response_latency_ms_bucket|tcp_[a-z_]+|"
                             r"route_[a-z_]+|inbound_[a-z_]+|outbound_[a-z_]+)\b")


def shipped_exprs() -> list[chart.Expr]:
    """Collected at import from a render in a placeholder namespace; the test renders its own."""
    values = chart.stack_values(MODELS, mode="keda", autoscaling={"prometheusAdapter": {"rulesConfigMap": True}})
    tmp = Path(tempfile.mkdtemp(prefix="llm-obs-collect-"))
    ms = chart.render(values, "collect", tmp)
    return (chart.dashboard_exprs(ms) + chart.rule_exprs(ms) + chart.keda_exprs(ms)
            + chart.adapter_exprs(ms, "collect"))


try:
    EXPRS = shipped_exprs()
    COLLECT_ERROR = ""
except Exception as e:  # noqa: BLE001 - reported by the test below, not as a collection error
    EXPRS, COLLECT_ERROR = [], f"{type(e).__name__}: {e}"


def localize(e: chart.Expr, st: Stack) -> str:
    """The expression for the test's namespace (from its own render) with Grafana variables filled in."""
    if e.kind in ("panel", "variable"):
        served = "|".join(m["servedModelName"] for m in MODELS)
        return chart.grafana_substitute(e.expr, {"namespace": st.namespace, "model_name": served,
                                                  "datasource": "prometheus"}, RATE_INTERVAL)
    return e.expr.replace('namespace="collect"', f'namespace="{st.namespace}"')


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, cluster: k8s.Cluster) -> Iterator[Stack]:
    sim = SimOptions(ttft_ms=40, itl_ms=10, max_num_seqs=2, failure_rate=5)
    with local_stack(cluster, tmp_path_factory.mktemp("observability"), MODELS, mode="keda",
                     autoscaling={"prometheusAdapter": {"rulesConfigMap": True}},
                     sim=sim, users=6, prefix="llm-obs") as st:
        # The ScaledObject is not applied here (no KEDA in this module): only its queries are evaluated.
        st.scale(MODELS[0], 2)
        for m in MODELS:
            st.runners[m["servedModelName"]].wait_replicas(2 if m is MODELS[0] else 1, 60)
        for load in st.loads.values():
            load.start()
        yield st


@pytest.fixture(scope="module")
def results(stack: Stack) -> dict[str, Any]:
    """Each expression's last result (or error), polled until all return data or SETTLE_SECONDS pass."""
    todo = {e.source: e for e in EXPRS if not LINKERD_METRICS.search(e.expr)}
    out: dict[str, Any] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while todo and time.monotonic() < deadline:
        stack.check()
        for src, e in list(todo.items()):
            q = localize(e, stack)
            try:
                res = stack.prom.query(q)
            except ValueError as err:
                out[src] = err
                del todo[src]
                continue
            out[src] = res
            if res:
                del todo[src]
        if todo:
            time.sleep(2)
    return out


def test_the_chart_ships_expressions_of_every_kind() -> None:
    assert not COLLECT_ERROR, f"could not render the chart to collect its PromQL: {COLLECT_ERROR}"
    kinds = {e.kind for e in EXPRS}
    assert {"panel", "record", "alert", "keda", "adapter"} <= kinds, f"expression kinds found: {sorted(kinds)}"


@pytest.mark.parametrize("expr", EXPRS, ids=str)
def test_expression_returns_data_under_load(expr: chart.Expr, stack: Stack, results: dict[str, Any]) -> None:
    if LINKERD_METRICS.search(expr.expr):
        pytest.skip("reads Linkerd proxy metrics: no linkerd2-proxy can run on this machine")
    res = results.get(expr.source)
    q = localize(expr, stack)
    if isinstance(res, Exception):
        pytest.fail(f"{expr.source}: Prometheus rejected the query {q!r}: {res}", pytrace=False)
    assert res, (f"{expr.source} returned no data after {SETTLE_SECONDS}s of load:\n  {q}\n"
                 f"(a metric name or label the simulator/vLLM does not export, or a selector that matches nothing)")
