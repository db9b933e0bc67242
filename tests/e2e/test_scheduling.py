"""Part 2: vLLM pods are scheduled as in a GPU cluster, by the real kube-scheduler.

One release with three models: one on A100s, one on H100s, and one that asks for more GPUs than any node
has (it must stay Pending, and the scheduler must say why).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from kubernetes import client

from tests import k8s
from tests.e2e import stack
from tests.e2e.conftest import Release, Releases

FITS = {"on-a100": (stack.A100, 4, 1), "on-h100": (stack.H100, 2, 2)}  # name: (product, replicas, gpus)
TOO_BIG = "too-big"
TOO_BIG_GPUS = 16  # every node has 8


@dataclass
class Placement:
    release: Release
    nodes: dict[str, client.V1Node]


@pytest.fixture(scope="module")
def placed(module_releases: Releases, cluster: k8s.Cluster) -> Placement:
    models = [stack.model(n, product=p, replicas=r, gpus=g) for n, (p, r, g) in FITS.items()]
    models.append(stack.model(TOO_BIG, product=stack.H100, replicas=1, gpus=TOO_BIG_GPUS))
    vals = module_releases.values_file("scheduling", stack.values(*models))
    # No --wait: one model is meant never to become Ready.
    rel = module_releases.install("sched", [vals], wait=False)
    for name in FITS:
        cluster.wait_rolled_out(rel.workload_namespace, stack.fullname(rel.name, name))
    return Placement(rel, {n.metadata.name: n for n in cluster.core.list_node().items})


@pytest.mark.parametrize("name", list(FITS))
def test_vllm_pods_land_only_on_gpu_nodes_of_their_product(name: str, placed: Placement,
                                                          cluster: k8s.Cluster) -> None:
    product, replicas, gpus = FITS[name]
    pods = cluster.ready_pods(placed.release.workload_namespace, stack.model_selector(placed.release.name, name))
    assert len(pods) == replicas, cluster.pod_summary(placed.release.workload_namespace)
    for p in pods:
        node = placed.nodes[p.spec.node_name]
        assert node.metadata.labels.get(k8s.GPU_PRODUCT) == product, \
            f"{p.metadata.name} of {name} ({product}) landed on {node.metadata.name} " \
            f"({node.metadata.labels.get(k8s.GPU_PRODUCT, 'no GPU')})"
        assert k8s.pod_gpus(p) == gpus, f"{p.metadata.name} asks for {k8s.pod_gpus(p)} GPUs, want {gpus}"
        tolerated = any(t.key == k8s.GPU and t.effect in (None, "NoSchedule") and
                        (t.operator == "Exists" or t.value == "present") for t in p.spec.tolerations or [])
        assert tolerated, f"{p.metadata.name} does not tolerate {k8s.GPU}=present:NoSchedule: {p.spec.tolerations}"


@pytest.mark.parametrize("name", list(FITS))
def test_vllm_replicas_spread_across_nodes_and_zones(name: str, placed: Placement, cluster: k8s.Cluster) -> None:
    product, replicas, _ = FITS[name]
    pods = cluster.ready_pods(placed.release.workload_namespace, stack.model_selector(placed.release.name, name))
    candidates = [n for n in placed.nodes.values() if n.metadata.labels.get(k8s.GPU_PRODUCT) == product]
    per_node = Counter(p.spec.node_name for p in pods)
    per_zone = Counter(placed.nodes[p.spec.node_name].metadata.labels[k8s.ZONE] for p in pods)
    zones = {n.metadata.labels[k8s.ZONE] for n in candidates}
    assert len(per_node) == min(replicas, len(candidates)), f"{name}: pods per node {dict(per_node)}"
    assert set(per_zone) == zones, f"{name}: pods per zone {dict(per_zone)}, zones with {product}: {zones}"
    assert max(per_node.values()) - min(per_node.values()) <= 1, f"{name}: uneven spread {dict(per_node)}"
    # The scheduler's default scoring spreads a little on its own: the Deployment must ask for it.
    d = cluster.apps.read_namespaced_deployment(stack.fullname(placed.release.name, name),
                                                placed.release.workload_namespace)
    keys = {c.topology_key for c in d.spec.template.spec.topology_spread_constraints or []}
    assert {k8s.HOSTNAME, k8s.ZONE} <= keys, f"{name}: topologySpreadConstraints cover only {keys}"


def test_model_needing_more_gpus_than_any_node_stays_pending(placed: Placement, cluster: k8s.Cluster) -> None:
    ns = placed.release.workload_namespace
    sel = stack.model_selector(placed.release.name, TOO_BIG)
    pods = k8s.wait_until(lambda: cluster.pods(ns, sel), timeout=30, what=f"the pod of {TOO_BIG}")
    pod = pods[0]

    def failed_scheduling() -> list[client.CoreV1Event]:
        return cluster.events(ns, involved=pod.metadata.name, reason="FailedScheduling")
    events = k8s.wait_until(failed_scheduling, timeout=60, what=f"a FailedScheduling event for {pod.metadata.name}")
    message = events[-1].message
    assert "Insufficient nvidia.com/gpu" in message, f"the scheduler gave another reason: {message}"
    pod = cluster.core.read_namespaced_pod(pod.metadata.name, ns)
    assert pod.status.phase == "Pending" and not pod.spec.node_name, \
        f"{pod.metadata.name} asks for {TOO_BIG_GPUS} GPUs but is {pod.status.phase} on {pod.spec.node_name}"
