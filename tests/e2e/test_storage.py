"""Part 4: data safety. Uninstall leaves the Namespace and the model PVCs and nothing else; a reinstall
binds the very same claims and volumes."""
from __future__ import annotations

from kubernetes import client

from tests import k8s
from tests.e2e.conftest import Releases, overlay_file

# What Kubernetes itself puts in every namespace: not ours, and not a leftover.
BUILTIN = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}


def claims(cluster: k8s.Cluster, ns: str) -> dict[str, tuple[str, str]]:
    """name -> (uid, bound volume) of every live PVC in a namespace.

    A claim being deleted is lost already (pvc-protection only delays it until its pods are gone).
    """
    out = {}
    for c in cluster.core.list_namespaced_persistent_volume_claim(ns).items:
        if c.metadata.deletion_timestamp is None:
            out[c.metadata.name] = (c.metadata.uid, c.spec.volume_name or "")
    return out


def all_bound(cluster: k8s.Cluster, ns: str) -> bool:
    items: list[client.V1PersistentVolumeClaim] = cluster.core.list_namespaced_persistent_volume_claim(ns).items
    return bool(items) and all(c.status.phase == "Bound" for c in items)


def test_uninstall_keeps_namespace_and_model_claims_and_reinstall_reuses_them(
        releases: Releases, cluster: k8s.Cluster, helm: k8s.Helm) -> None:
    # prod: per-model claims, and (with global.namespace) a Namespace the chart creates itself.
    rel = releases.install("data", [overlay_file("prod")], timeout="180s")
    ns = rel.workload_namespace
    k8s.wait_until(lambda: all_bound(cluster, ns), timeout=30, what=f"the claims in {ns} to bind")
    first = claims(cluster, ns)
    assert first, "the prod overlay made no PersistentVolumeClaim"

    helm.uninstall(rel.name, rel.namespace)

    def leftovers() -> list[tuple[str, str]]:
        objs = set(cluster.namespaced_objects(ns)) | (set(cluster.namespaced_objects(rel.namespace))
                                                       if rel.namespace != ns else set())
        return sorted(o for o in objs - BUILTIN if o[0] != "PersistentVolumeClaim")
    try:
        k8s.wait_until(lambda: not leftovers(), timeout=45, interval=1, what="the uninstall to finish")
    except TimeoutError:
        raise AssertionError(f"helm uninstall left objects behind in {ns}: {leftovers()}") from None
    assert cluster.namespace_exists(ns), f"helm uninstall deleted the Namespace {ns} (and with it the model cache)"
    kept = claims(cluster, ns)
    assert kept == first, f"helm uninstall changed the model claims: before {first}, after {kept}"
    for _, volume in kept.values():
        pv = cluster.core.read_persistent_volume(volume)
        assert pv.status.phase == "Bound", f"volume {volume} is {pv.status.phase} after uninstall"

    helm.install(rel.name, rel.namespace, rel.values, rel.sets, timeout="180s")
    again = claims(cluster, ns)
    assert again == first, f"the reinstall did not reuse the claims: before {first}, after {again}"
    assert all_bound(cluster, ns)
    for _, volume in again.values():
        pv = cluster.core.read_persistent_volume(volume)
        assert pv.status.phase == "Bound" and pv.spec.claim_ref.uid in {uid for uid, _ in first.values()}, \
            f"volume {volume} is {pv.status.phase}, claimed by {pv.spec.claim_ref}"
