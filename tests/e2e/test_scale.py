"""Part 6: one install of 52 replicas over 26+ simulated GPU nodes reaches Ready.

The test adds the KWOK GPU nodes it needs (the Node shape of scripts/cluster-up.sh) and removes them after.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests import k8s
from tests.e2e import stack
from tests.e2e.conftest import Releases

REPLICAS = 52
# Half a node per replica: at most two per node, so the replicas cannot fit on fewer than 26 nodes and
# the test does not lean on the scheduler's spreading scores.
GPUS = 4
MIN_NODES = 20
PRODUCT = stack.A100


@pytest.fixture
def extra_gpu_nodes(cluster: k8s.Cluster) -> Iterator[list[str]]:
    if cluster.runtime() != "kwok":
        pytest.fail("the scale test adds KWOK nodes: the cluster needs a KWOK controller that manages nodes "
                    "annotated kwok.x-k8s.io/node=fake (scripts/cluster-up.sh's default runtime has one)",
                    pytrace=False)
    slots = sum(free // GPUS for free in cluster.free_gpus(PRODUCT).values())
    extra = max(MIN_NODES, -(-(REPLICAS - slots) * GPUS // 8))
    names = [f"e2e-scale-{k8s.unique('n', 4)}-{i}" for i in range(extra)]
    try:
        cluster.add_kwok_gpu_nodes(names, PRODUCT)
        yield names
    finally:
        cluster.delete_nodes(names)


def test_fifty_replicas_over_twenty_gpu_nodes_become_ready(extra_gpu_nodes: list[str], releases: Releases,
                                                          cluster: k8s.Cluster) -> None:
    nodes = cluster.gpu_nodes(PRODUCT)
    assert len(nodes) >= MIN_NODES
    vals = releases.values_file("scale", stack.values(
        stack.model("scale", product=PRODUCT, replicas=REPLICAS, gpus=GPUS)))
    rel = releases.install("scale", [vals], timeout="150s")
    sel = stack.model_selector(rel.name, "scale")
    pods = cluster.wait_pods_ready(rel.workload_namespace, sel, REPLICAS, timeout=30)
    assert len(pods) == REPLICAS
    per_node = Counter(p.spec.node_name for p in pods)
    assert len(per_node) >= MIN_NODES, f"{REPLICAS} replicas landed on only {len(per_node)} nodes: {dict(per_node)}"
    zones = Counter(n.metadata.labels[k8s.ZONE] for n in nodes if n.metadata.name in per_node)
    assert len(zones) >= 2, f"all replicas in one zone: {dict(zones)}"
