"""Part 3: upgrades roll out on a cluster with no spare GPU, never below what the PDB allows; rollback
restores the previous revision."""
from __future__ import annotations

import math
from typing import Any

from kubernetes import client

from tests import k8s
from tests.e2e import stack
from tests.e2e.conftest import Releases

NAME = "roll"
PRODUCT = stack.H100
REPLICAS, GPUS = 4, 4
V1_ARGS = ["--max-num-seqs=128"]
V2_ARGS = ["--max-num-seqs=64", "--enable-prefix-caching"]


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


def test_upgrade_on_full_gpus_keeps_pdb_and_rollback_restores(releases: Releases, cluster: k8s.Cluster,
                                                             helm: k8s.Helm) -> None:
    v1 = releases.values_file("v1", stack.values(
        stack.model(NAME, product=PRODUCT, replicas=REPLICAS, gpus=GPUS, engine_args=V1_ARGS)))
    v2 = releases.values_file("v2", stack.values(
        stack.model(NAME, product=PRODUCT, replicas=REPLICAS, gpus=GPUS, engine_args=V2_ARGS)))
    rel = releases.install("rollout", [v1])
    ns, dep = rel.workload_namespace, stack.fullname(rel.name, NAME)
    sel = stack.model_selector(rel.name, NAME)

    fill_gpus(cluster, ns, PRODUCT)
    free = cluster.free_gpus(PRODUCT)
    assert sum(free.values()) == 0, f"the {PRODUCT} nodes still have free GPUs: {free}"

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
        releases.upgrade(rel, [v2], timeout="60s")
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

