"""Part 7: the cluster under test is shaped like a GPU cluster (KWOK or kind alike), and a cluster that
cannot be reached is a failure that says why, never a skip."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import helm as helm_tools
from tests import k8s

CRDS = [
    "scaledobjects.keda.sh",
    "servicemonitors.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
    "httproutes.gateway.networking.k8s.io",
    "servers.policy.linkerd.io",
    "authorizationpolicies.policy.linkerd.io",
    "meshtlsauthentications.policy.linkerd.io",
]
PRODUCTS = {"NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"}


def test_cluster_has_tainted_gpu_nodes_of_two_products_in_two_zones(cluster: k8s.Cluster) -> None:
    nodes = cluster.gpu_nodes()
    assert len(nodes) >= 4, f"want at least 4 GPU nodes, found {[n.metadata.name for n in nodes]}"
    assert {n.metadata.labels[k8s.GPU_PRODUCT] for n in nodes} >= PRODUCTS
    assert {n.metadata.labels.get(k8s.ZONE) for n in nodes} >= {"zone-a", "zone-b"}
    for n in nodes:
        taints = {(t.key, t.value, t.effect) for t in (n.spec.taints or [])}
        assert (k8s.GPU, "present", "NoSchedule") in taints, f"{n.metadata.name} lacks the GPU taint: {taints}"
        assert k8s.node_ready(n), f"{n.metadata.name} is not Ready"


def test_cluster_serves_the_crds_the_charts_use(cluster: k8s.Cluster) -> None:
    ext = cluster.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    problems = []
    for name in CRDS:
        try:
            crd = ext.get(name=name)
        except Exception:  # noqa: BLE001
            problems.append(f"{name}: not installed (scripts/cluster-up.sh applies scripts/fetch-crds.sh's CRDs)")
            continue
        conds = {c.type: c.status for c in crd.status.conditions or []}
        if conds.get("Established") != "True":
            problems.append(f"{name}: not Established ({conds})")
    assert not problems, "\n".join(problems)


def test_cluster_has_a_default_storage_class(cluster: k8s.Cluster) -> None:
    sc = cluster.dynamic.resources.get(api_version="storage.k8s.io/v1", kind="StorageClass").get()
    defaults = [s.metadata.name for s in sc.items
                if (s.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert defaults, "no default StorageClass: the charts' claims would never bind"


@pytest.mark.parametrize("kubeconfig", ["missing", "refused"])
def test_unreachable_cluster_fails_with_a_clear_message(kubeconfig: str, tmp_path: Path) -> None:
    """Run one e2e test in a child pytest against a cluster that is not there: it must FAIL, not skip."""
    if kubeconfig == "missing":
        path = tmp_path / "no-such-kubeconfig"
        expect = "no kubeconfig at"
    else:
        path = tmp_path / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
            "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:9'}}]\n"
            "contexts: [{name: x, context: {cluster: x, user: x}}]\nusers: [{name: x, user: {token: t}}]\n")
        expect = "does not answer"
    env = {**os.environ, "KUBECONFIG": str(path)}
    test = f"{Path(__file__).relative_to(helm_tools.ROOT)}::test_cluster_has_a_default_storage_class"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "e2e", "-p", "no:cacheprovider", "-q", test],
                          capture_output=True, text=True, env=env, cwd=helm_tools.ROOT, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"want exit 1 (a test failed), got {proc.returncode}:\n{out}"
    assert "1 failed" in out and "skipped" not in out, out
    assert "cannot reach a Kubernetes cluster" in out and expect in out and "scripts/cluster-up.sh" in out, out
