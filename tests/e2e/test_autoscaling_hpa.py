"""The HorizontalPodAutoscaler our chart renders (autoscaling mode hpa) scales a model's Deployment on CPU
(metrics-server reading KWOK's simulated pod usage) and on vLLM queue depth (prometheus-adapter, built
from the pinned module by scripts/bootstrap.sh --only prom, serving the chart's adapter rules from a
local Prometheus that scrapes one simulator per Ready pod).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import k8s

from .support import chart
from .support.metricsapi import AggregatedAPI, start_prometheus_adapter
from .support.procs import wait_for
from .support.sim import SimOptions
from .support.stack import Stack, local_stack

MODEL = {"name": "hpa-a", "model": "sim/model-hpa", "servedModelName": "model-hpa"}
CPU_USAGE = "kwok.x-k8s.io/usage-cpu"     # KWOK's ClusterResourceUsage reads pod usage from this annotation
RESOURCE_PATH = "metrics.k8s.io/resource-metrics-path"
FAST_BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 10, "selectPolicy": "Max",
                  "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
}
HPA_VALUES = {"defaults": {"minReplicas": 1, "maxReplicas": 4, "hpa": {
    "metrics": ["cpu", "pods", "external"],
    "targets": {"cpu": {"averageUtilization": 80}, "pods": {"averageValue": "2"}, "external": {"averageValue": "2"}},
    "behavior": FAST_BEHAVIOR}}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, cluster: k8s.Cluster) -> Iterator[Stack]:
    ensure_node_metrics_paths(cluster)
    sim = SimOptions(ttft_ms=150, itl_ms=20, max_num_seqs=2)
    with local_stack(cluster, tmp_path_factory.mktemp("hpa"), [MODEL], mode="hpa", autoscaling=HPA_VALUES,
                     sim=sim, users=20, prefix="llm-hpa") as st:
        st.runners[MODEL["servedModelName"]].wait_replicas(1, 60)
        yield st


@pytest.fixture(scope="module")
def adapter(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AggregatedAPI]:
    api = start_prometheus_adapter(stack.procs, stack.cluster, tmp_path_factory.mktemp("adapter"),
                                   stack.prom.url, chart.adapter_config(stack.manifests))
    yield api
    api.close()


def ensure_node_metrics_paths(cluster: k8s.Cluster) -> None:
    """metrics-server finds KWOK's per-node resource metrics through this node annotation (kwokctl adds it
    to the nodes it creates; scripts/cluster-up.sh creates its own nodes)."""
    for n in cluster.core.list_node().items:
        if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") != "fake":
            continue
        path = f"/metrics/nodes/{n.metadata.name}/metrics/resource"
        if (n.metadata.annotations or {}).get(RESOURCE_PATH) != path:
            cluster.core.patch_node(n.metadata.name, {"metadata": {"annotations": {RESOURCE_PATH: path}}})


def hpa_status(stack: Stack) -> dict[str, Any]:
    hpa = stack.cluster.dynamic.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")
    return hpa.get(name=chart.fullname(MODEL), namespace=stack.namespace).to_dict().get("status") or {}


def current(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for m in status.get("currentMetrics") or []:
        if m.get("type") == kind:
            return m[{"Resource": "resource", "Pods": "pods", "External": "external"}[kind]]["current"]
    return None


def quantity(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def wait(stack: Stack, pred: Any, timeout: float, what: str) -> None:
    def ok() -> bool:
        stack.check()
        return bool(pred(stack.deployment(MODEL), hpa_status(stack)))
    try:
        wait_for(ok, timeout, what, interval=1)
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{k8s.describe_deployment(stack.deployment(MODEL))}\n"
                             f"HPA status: {hpa_status(stack)}") from None


def set_cpu_usage(stack: Stack, usage: str | None) -> None:
    for p in stack.cluster.pods(stack.namespace, stack.selector(MODEL)):
        stack.cluster.core.patch_namespaced_pod(p.metadata.name, stack.namespace,
                                                {"metadata": {"annotations": {CPU_USAGE: usage}}})


@pytest.fixture(scope="module")
def hpa_applied(stack: Stack, adapter: AggregatedAPI) -> dict[str, Any]:
    hpas = stack.of_kind("HorizontalPodAutoscaler")
    assert [h["metadata"]["name"] for h in hpas] == [chart.fullname(MODEL)], "expected one HPA for the model"
    hpa = hpas[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == chart.fullname(MODEL)
    stack.apply([hpa])
    return hpa


def test_hpa_scales_out_on_cpu_from_metrics_server(stack: Stack, hpa_applied: dict[str, Any]) -> None:
    requests = hpa_applied and stack.deployment(MODEL).spec.template.spec.containers[0].resources.requests or {}
    assert "cpu" in requests, "the vLLM container has no CPU request: the HPA cannot compute utilization"
    cpu_request = quantity(str(requests["cpu"]))
    t0 = time.monotonic()
    set_cpu_usage(stack, f"{int(cpu_request * 2000)}m")   # 200 % of the request, target 80 %
    wait(stack, lambda d, s: (current(s, "Resource") or {}).get("averageUtilization", 0) > 80, 90,
         "metrics-server to report the pods' CPU above the 80 % target")
    t_seen = time.monotonic()
    wait(stack, lambda d, s: (d.spec.replicas or 0) > 1, 60, "the HPA to scale out on CPU")
    t_out = time.monotonic()
    set_cpu_usage(stack, None)
    wait(stack, lambda d, s: (d.spec.replicas or 0) == 1, 120, "the HPA to scale back in when CPU drops")
    print(f"\nHPA on CPU: usage set -> metrics-server reports it {t_seen - t0:.1f}s, -> scale-out "
          f"{t_out - t0:.1f}s, usage cleared -> back to 1 {time.monotonic() - t_out:.1f}s")


def test_hpa_scales_out_on_queue_depth_from_prometheus_adapter(stack: Stack, hpa_applied: dict[str, Any]) -> None:
    served = MODEL["servedModelName"]
    t0 = time.monotonic()
    stack.loads[served].start()
    try:
        wait(stack, lambda d, s: quantity((current(s, "External") or {}).get("averageValue", "0")) > 2, 60,
             "prometheus-adapter's external vllm_num_requests_waiting (model_name selector) above target")
        wait(stack, lambda d, s: (d.spec.replicas or 0) > 1, 60, "the HPA to scale out on queue depth")
        print(f"\nHPA on queue depth (prometheus-adapter): load -> scale-out {time.monotonic() - t0:.1f}s")
        s = hpa_status(stack)
        assert current(s, "Pods") is not None, f"the per-pod queue metric was never served: {s}"
    finally:
        stack.loads[served].stop()
