"""Part 3: upgrades roll out on a cluster with no spare GPU, never below what the PDB allows; rollback
restores the previous revision."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests import k8s
from tests.e2e import stack
from tests.e2e.conftest import Releases

NAME = "roll"
# Four replicas of half a node on two nodes of their own: every GPU of the product is taken, and nobody
# else's pods (a shared cluster may run other installs) can hold or grab one.
REPLICAS, GPUS, NODES = 4, 4, 2
# v2 changes a typed engine setting and adds a free-form flag: both must reach the container.
V1 = {"engine": {"maxNumSeqs": 128}, "extra_args": []}
V2 = {"engine": {"maxNumSeqs": 64}, "extra_args": ["--max-num-batched-tokens=8192"]}
V2_ARGS = ["--max-num-seqs=64", "--max-num-batched-tokens=8192"]


def template_of(d: client.V1Deployment, api: client.ApiClient) -> dict[str, Any]:
    t = api.sanitize_for_serialization(d.spec.template)
    return {"labels": t["metadata"].get("labels"), "spec": t["spec"]}


def min_available(pdb: client.V1PodDisruptionBudget, replicas: int) -> int:
    """The fewest Ready pods the PDB allows for this many replicas."""
    def value(v: int | str, round_up: bool) -> int:
        if isinstance(v, str) and v.endswith("%"):
            x = replicas * int(v[:-1]) / 100
            return math.ceil(x) if round_up else math.floor(x)
        return int(v)
    if pdb.spec.min_available is not None:
        return value(pdb.spec.min_available, True)
    return replicas - value(pdb.spec.max_unavailable, True)


def fill_gpus(cluster: k8s.Cluster, ns: str, product: str) -> int:
    """Requests every free GPU of one product with placeholder pods; returns how many it took."""
    free = sum(cluster.free_gpus(product).values())
    if free:
        cluster.apps.create_namespaced_deployment(ns, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "gpu-filler"},
            "spec": {
                "replicas": free,
                "selector": {"matchLabels": {"app": "gpu-filler"}},
                "template": {
                    "metadata": {"labels": {"app": "gpu-filler"}},
                    "spec": {
                        "nodeSelector": {k8s.GPU_PRODUCT: product},
                        "tolerations": [{"key": k8s.GPU, "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                        "resources": {"limits": {k8s.GPU: "1"}}}],
                    },
                },
            },
        })
        cluster.wait_rolled_out(ns, "gpu-filler")
    return free


@pytest.fixture
def product(cluster: k8s.Cluster) -> Iterator[str]:
    """A GPU product only this test uses: two KWOK nodes of it (on kind: the H100 nodes, topped up)."""
    if cluster.runtime() != "kwok":
        yield stack.H100
        return
    name = k8s.unique("NVIDIA-E2E-ROLLOUT", 4)
    nodes = [f"e2e-rollout-{name[-4:]}-{i}" for i in range(NODES)]
    try:
        cluster.add_kwok_gpu_nodes(nodes, name)
        yield name
    finally:
        cluster.delete_nodes(nodes)


def test_upgrade_on_full_gpus_keeps_pdb_and_rollback_restores(product: str, releases: Releases,
                                                             cluster: k8s.Cluster, helm: k8s.Helm) -> None:
    v1 = releases.values_file("v1", stack.values(
        stack.model(NAME, product=product, replicas=REPLICAS, gpus=GPUS, **V1)))
    v2 = releases.values_file("v2", stack.values(
        stack.model(NAME, product=product, replicas=REPLICAS, gpus=GPUS, **V2)))
    rel = releases.install("rollout", [v1])
    ns, dep = rel.workload_namespace, stack.fullname(rel.name, NAME)
    sel = stack.model_selector(rel.name, NAME)
    # helm --wait accepts replicas - maxUnavailable Ready pods; the test needs every replica up.
    cluster.wait_rolled_out(ns, dep, timeout=30)

    fill_gpus(cluster, ns, product)
    free = cluster.free_gpus(product)
    assert sum(free.values()) == 0, f"the {product} nodes still have free GPUs: {free}"

    pdbs = [p for p in cluster.policy.list_namespaced_pod_disruption_budget(ns).items
            if p.spec.selector.match_labels and all(
                (pod.metadata.labels or {}).get(k) == v
                for pod in cluster.pods(ns, sel) for k, v in p.spec.selector.match_labels.items())]
    assert pdbs, f"no PodDisruptionBudget selects the pods of {dep}"
    floor = max(min_available(p, REPLICAS) for p in pdbs)
    assert 0 < floor < REPLICAS, f"the PDB allows {floor} of {REPLICAS}: no rollout could ever proceed"

    before = template_of(cluster.apps.read_namespaced_deployment(dep, ns), cluster.api)
    with k8s.watch_deployment(cluster, ns, dep) as seen:
        # No spare GPU: with a surge the new pod would stay Pending and --wait would time out.
        try:
            releases.upgrade(rel, [v2], timeout="45s")
        except k8s.HelmError as e:
            raise AssertionError(
                f"the upgrade did not complete on a cluster with no spare {product} GPU (a surge pod cannot "
                f"schedule: the rollout must not surge):\n{e}\n{cluster.pod_summary(ns, sel)}") from None
    after = cluster.wait_rolled_out(ns, dep, timeout=30)
    assert template_of(after, cluster.api) != before, "the upgrade did not change the pod template"
    c = after.spec.template.spec.containers[0]
    words = " ".join([*(c.command or []), *(c.args or [])])
    assert all(a in words for a in V2_ARGS), f"the new engine args {V2_ARGS} are not in the container: {words}"
    lowest = min((d.status.ready_replicas or 0) for d in seen)
    assert len(seen) > 2, f"the watch saw only {len(seen)} states of {dep}"
    assert lowest >= floor, f"ready replicas fell to {lowest} during the rollout; the PDB allows no fewer than {floor}"
    pods = cluster.ready_pods(ns, sel)
    hashes = {p.metadata.labels.get("pod-template-hash") for p in pods}
    assert len(pods) == REPLICAS and len(hashes) == 1, f"not all pods run the new template:\n{cluster.pod_summary(ns, sel)}"

    helm.rollback(rel.name, rel.namespace, 1)
    restored = cluster.wait_rolled_out(ns, dep, timeout=60)
    assert template_of(restored, cluster.api) == before, "helm rollback did not restore revision 1's pod template"
    history = helm.history(rel.name, rel.namespace)
    assert [h["status"] for h in history][-1] == "deployed" and len(history) == 3, history

