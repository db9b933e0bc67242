"""KEDA scales a model's Deployment on vLLM queue depth, with the ScaledObject our chart renders.

keda-operator and keda-adapter (built from the pinned module by scripts/bootstrap.sh --only keda) run as local
processes against the local API server; keda-adapter is registered as v1beta1.external.metrics.k8s.io.
The ScaledObject queries a local Prometheus that scrapes one simulator per Ready pod of the Deployment,
so more replicas really drain the queue. Timeline: reports/autoscaling.png and .json.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import k8s

from .support import chart
from .support.load import INFLIGHT
from .support.metricsapi import AggregatedAPI, start_keda
from .support.procs import wait_for
from .support.report import Recorder
from .support.sim import SimOptions
from .support.stack import Stack, local_stack

MODEL = {"name": "scale-a", "model": "sim/model-scale", "servedModelName": "model-scale"}
MAX_REPLICAS = 4
QUEUE_TARGET = 2
FAST_BEHAVIOR = {  # the chart's defaults wait minutes (GPU pods); the test keeps the mechanics, not the pace
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
    "scaleDown": {"stabilizationWindowSeconds": 10, "selectPolicy": "Max",
                  "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
}


def keda_values(scale_to_zero: bool, namespace: str = "") -> dict[str, Any]:
    keda: dict[str, Any] = {
        "pollingInterval": 5, "cooldownPeriod": 15, "initialCooldownPeriod": 0,
        # Off, so that only the metric can move replicas (fallback replicas would also "scale out").
        "fallback": {"enabled": False},
        "triggers": {"queueDepth": {"enabled": True, "threshold": QUEUE_TARGET}},
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": FAST_BEHAVIOR}},
    }
    if scale_to_zero:
        keda["scaleToZero"] = {
            "enabled": True, "activationThreshold": 0,
            # At zero replicas no vLLM series exist: wake on what the gateway in front of the model sees.
            "activationQuery": f'sum({INFLIGHT}{{namespace="{namespace}",model_name="{MODEL["servedModelName"]}"}})',
        }
    return {"defaults": {"minReplicas": 1, "maxReplicas": MAX_REPLICAS, "keda": keda}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, cluster: k8s.Cluster) -> Iterator[Stack]:
    sim = SimOptions(ttft_ms=150, itl_ms=20, max_num_seqs=2)
    with local_stack(cluster, tmp_path_factory.mktemp("keda"), [MODEL], mode="keda",
                     autoscaling=keda_values(False), sim=sim, users=20, prefix="llm-keda") as st:
        st.runners[MODEL["servedModelName"]].wait_replicas(1, 60)
        yield st


@pytest.fixture(scope="module")
def keda(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AggregatedAPI]:
    api = start_keda(stack.procs, stack.cluster, tmp_path_factory.mktemp("keda-run"), stack.namespace)
    yield api
    # ScaledObjects carry KEDA's finalizer: delete them while the operator still runs, or the namespace
    # that the stack fixture deletes next would stay Terminating for good.
    so = stack.cluster.dynamic.resources.get(api_version="keda.sh/v1alpha1", kind="ScaledObject")
    for item in so.get(namespace=stack.namespace).items:
        so.delete(name=item.metadata.name, namespace=stack.namespace)
    k8s.wait_until(lambda: not so.get(namespace=stack.namespace).items, timeout=60,
                   what="KEDA to release its ScaledObjects")
    api.close()


@pytest.fixture(scope="module")
def recorder(stack: Stack) -> Iterator[Recorder]:
    served = MODEL["servedModelName"]
    q = f'sum(vllm:num_requests_waiting{{namespace="{stack.namespace}",model_name="{served}"}})'

    def read() -> tuple[int, int, float, int]:
        d = stack.deployment(MODEL)
        return d.spec.replicas or 0, d.status.ready_replicas or 0, stack.prom.value(q, math.nan), \
            len(stack.runners[served].endpoints())
    rec = Recorder(read).start()
    yield rec
    rec.stop()


def scaled_object(stack: Stack) -> dict[str, Any]:
    sos = stack.of_kind("ScaledObject")
    assert len(sos) == 1, f"expected one ScaledObject, the chart rendered {[s['metadata']['name'] for s in sos]}"
    so = sos[0]
    assert so["spec"]["scaleTargetRef"]["name"] == chart.fullname(MODEL)
    return so


def keda_hpa_metrics(stack: Stack) -> list[dict[str, Any]]:
    """currentMetrics of the HPA that KEDA created for the ScaledObject (what the HPA controller read)."""
    hpa = stack.cluster.dynamic.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")
    obj = hpa.get(name=f"keda-hpa-{chart.fullname(MODEL)}", namespace=stack.namespace).to_dict()
    return obj.get("status", {}).get("currentMetrics") or []


def so_conditions(stack: Stack) -> dict[str, str]:
    so = stack.cluster.dynamic.resources.get(api_version="keda.sh/v1alpha1", kind="ScaledObject")
    obj = so.get(name=chart.fullname(MODEL), namespace=stack.namespace).to_dict()
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions") or []}


def wait_replicas(stack: Stack, pred: Any, timeout: float, what: str) -> None:
    def ok() -> bool:
        stack.check()
        return bool(pred(stack.deployment(MODEL)))
    try:
        wait_for(ok, timeout, what, interval=1)
    except TimeoutError as e:
        d = stack.deployment(MODEL)
        raise AssertionError(f"{e}\n{k8s.describe_deployment(d)}\nKEDA operator log:\n"
                             f"{next(p for p in stack.procs.procs if p.name == 'keda-operator').tail(15)}") from None


def test_scaledobject_scales_out_on_queue_depth_and_back_after_cooldown(
        stack: Stack, keda: AggregatedAPI, recorder: Recorder) -> None:
    served = MODEL["servedModelName"]
    so = scaled_object(stack)
    stack.apply([so])
    wait_replicas(stack, lambda d: (d.spec.replicas or 0) == 1, 60, "KEDA to hold the Deployment at minReplicas 1")
    t_load = recorder.mark("load on")
    stack.loads[served].start()
    wait_replicas(stack, lambda d: (d.spec.replicas or 0) > 1, 90, "KEDA to scale out under queue build-up")
    t_decision = recorder.mark("scale-out decision")
    metrics = keda_hpa_metrics(stack)
    ext = [m["external"] for m in metrics if m.get("type") == "External"]
    assert ext and float(ext[0]["current"]["averageValue"].rstrip("m") or 0) > 0, \
        f"the scale-out was not driven by the queue-depth metric; HPA currentMetrics: {metrics}"
    assert so_conditions(stack).get("Fallback") != "True", f"KEDA is in fallback: {so_conditions(stack)}"
    runner = stack.runners[served]
    wait_replicas(stack, lambda d: (d.spec.replicas or 0) > 1 and (d.status.ready_replicas or 0) >= d.spec.replicas
                  and len(runner.endpoints()) >= d.spec.replicas, 60, "the new replicas to be Ready and serving")
    t_ready = recorder.mark("new replicas serving")
    peak_wait = 0
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and peak_wait < MAX_REPLICAS:
        peak_wait = max(peak_wait, stack.deployment(MODEL).spec.replicas or 0)
        time.sleep(1)
    stack.loads[served].stop()
    t_off = recorder.mark("load off")
    wait_replicas(stack, lambda d: (d.spec.replicas or 0) == 1, 120, "KEDA/HPA to scale back to 1 after cooldown")
    t_down = recorder.mark("back to 1")
    recorder.numbers = {  # type: ignore[attr-defined]
        "load_to_scale_out_decision_s": round(t_decision - t_load, 1),
        "load_to_new_replicas_ready_s": round(t_ready - t_load, 1),
        "peak_replicas": peak_wait, "load_off_to_min_replicas_s": round(t_down - t_off, 1),
        "requests_ok": stack.loads[served].ok, "requests_failed": stack.loads[served].failed,
    }
    print(f"\nKEDA queue-depth scaling: {recorder.numbers}")  # type: ignore[attr-defined]
    assert peak_wait >= 2


def test_scaledobject_scales_to_zero_when_idle_and_back_from_zero_on_traffic(
        stack: Stack, keda: AggregatedAPI, recorder: Recorder) -> None:
    served = MODEL["servedModelName"]
    values = chart.stack_values([MODEL], mode="keda", autoscaling=chart.deep_merge(
        {"defaults": {"keda": {"prometheus": {"serverAddress": stack.prom.url}}}},
        keda_values(True, stack.namespace)))
    so = next(m.obj for m in stack.rerender(values) if m.kind == "ScaledObject")
    assert so["spec"].get("idleReplicaCount") == 0, "scaleToZero.enabled did not render idleReplicaCount: 0"
    stack.apply([so])
    t_on = recorder.mark("scale to zero on")
    wait_replicas(stack, lambda d: (d.spec.replicas or 0) == 0, 90, "KEDA to scale the idle model to zero")
    t_zero = recorder.mark("at zero")
    assert so_conditions(stack).get("Fallback") != "True", f"KEDA is in fallback: {so_conditions(stack)}"
    stack.runners[served].wait_replicas(0, 30)
    stack.loads[served].start()
    t_load = recorder.mark("traffic at zero")
    wait_replicas(stack, lambda d: (d.status.ready_replicas or 0) >= 1, 90, "KEDA to wake the model from zero")
    t_awake = recorder.mark("awake")
    assert so_conditions(stack).get("Active") == "True", f"ScaledObject not Active on wake: {so_conditions(stack)}"
    stack.runners[served].wait_replicas(stack.deployment(MODEL).status.ready_replicas or 1, 30)
    time.sleep(5)
    stack.loads[served].stop()
    numbers = {**getattr(recorder, "numbers", {}), "idle_to_zero_s": round(t_zero - t_on, 1),
               "traffic_to_ready_from_zero_s": round(t_awake - t_load, 1)}
    png = recorder.write("autoscaling", f"KEDA on vLLM queue depth ({served}, target {QUEUE_TARGET} waiting/replica)",
                         numbers)
    print(f"\nscale from zero: {numbers}\nplot: {png}")
    assert stack.loads[served].ok > 0, "no request succeeded after waking from zero"
