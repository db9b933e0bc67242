"""Part 1: every overlay installs with `helm install --wait` and everything it made is live and accepted.

The four installs run at once (each its own namespace and release) to keep the suite fast; each overlay's
checks are their own test so a failure names the overlay.
"""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from tests import helm as helm_tools
from tests import k8s
from tests.e2e.conftest import Release, Releases, overlay_file

OVERLAYS = ["dev", "staging", "prod", "local"]
# CR kinds and the API group whose real CRD must accept them.
CR_GROUPS = {
    "ScaledObject": "keda.sh",
    "ServiceMonitor": "monitoring.coreos.com",
    "PodMonitor": "monitoring.coreos.com",
    "PrometheusRule": "monitoring.coreos.com",
    "Server": "policy.linkerd.io",
    "AuthorizationPolicy": "policy.linkerd.io",
    "MeshTLSAuthentication": "policy.linkerd.io",
    "HTTPRoute": "gateway.networking.k8s.io",
}


def merged_values(overlay: str) -> dict[str, Any]:
    """The umbrella's values.yaml with the overlay over it (enough to know which features are on)."""
    base = yaml.safe_load((helm_tools.CHART / "values.yaml").read_text()) or {}
    over = yaml.safe_load(overlay_file(overlay).read_text()) or {}

    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out
    return merge(base, over)


def expected_cr_kinds(values: dict[str, Any]) -> set[str]:
    """The custom resources an overlay must create, from what it turns on."""
    g = values.get("global") or {}
    models = g.get("models") or []
    kinds: set[str] = set()
    auto = g.get("autoscaling") or {}
    if auto.get("enabled"):
        modes = {((m.get("autoscaling") or {}).get("mode") or auto.get("mode")) for m in models}
        if "keda" in modes:
            kinds.add("ScaledObject")
    if (values.get("observability") or {}).get("enabled"):
        kinds |= {"PrometheusRule"}
    if (g.get("mesh") or {}).get("enabled"):
        kinds |= {"Server", "AuthorizationPolicy"}
    if (g.get("mesh") or {}).get("enabled") and ((values.get("mesh") or {}).get("routes") or {}).get("enabled", True):
        kinds.add("HTTPRoute")
    return kinds


@pytest.fixture(scope="module")
def installs(module_releases: Releases) -> dict[str, Release | Exception]:
    def one(overlay: str) -> Release | Exception:
        try:
            return module_releases.install(overlay, [overlay_file(overlay)], timeout="180s")
        except Exception as e:  # noqa: BLE001 - reported by the overlay's own test
            return e
    with ThreadPoolExecutor(max_workers=len(OVERLAYS)) as pool:
        return dict(zip(OVERLAYS, pool.map(one, OVERLAYS), strict=True))


def installed(installs: dict[str, Release | Exception], overlay: str) -> Release:
    r = installs[overlay]
    if isinstance(r, Exception):
        pytest.fail(f"overlay {overlay}: {r}", pytrace=False)
    return r


def ns_of(m: helm_tools.Manifest, rel: Release) -> str:
    return m.namespace or rel.namespace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_installs_to_ready(overlay: str, installs: dict[str, Release | Exception],
                                   cluster: k8s.Cluster, helm: k8s.Helm) -> None:
    rel = installed(installs, overlay)
    manifests = helm.manifests(rel.name, rel.namespace)
    problems: list[str] = []

    deployments = [m for m in manifests if m.kind == "Deployment"]
    assert deployments, f"overlay {overlay} made no Deployment"
    want_pods = 0
    for m in deployments:
        d = cluster.apps.read_namespaced_deployment(m.name, ns_of(m, rel))
        if not cluster.deployment_rolled_out(d):
            problems.append(f"Deployment not rolled out:\n{k8s.describe_deployment(d)}")
        want_pods += d.spec.replicas
        sel = ",".join(f"{k}={v}" for k, v in d.spec.selector.match_labels.items())
        ready = cluster.ready_pods(ns_of(m, rel), sel)
        if len(ready) != d.spec.replicas:
            problems.append(f"Deployment {m.name}: {len(ready)} Ready pods, want {d.spec.replicas}:\n"
                            f"{cluster.pod_summary(ns_of(m, rel), sel)}")

    for m in (m for m in manifests if m.kind == "Job"):
        j = cluster.batch.read_namespaced_job(m.name, ns_of(m, rel))
        if not any(c.type == "Complete" and c.status == "True" for c in (j.status.conditions or [])):
            problems.append(f"Job {m.name} did not complete: {j.status}")

    for m in (m for m in manifests if m.kind == "Service"):
        svc = cluster.core.read_namespaced_service(m.name, ns_of(m, rel))
        if not svc.spec.selector:
            continue
        sel = ",".join(f"{k}={v}" for k, v in svc.spec.selector.items())
        pods = {p.status.pod_ip for p in cluster.ready_pods(ns_of(m, rel), sel)}
        got = k8s.wait_until(lambda m=m: cluster.endpoint_ips(ns_of(m, rel), m.name) or {"<none>"}, timeout=15,
                             what=f"endpoints of Service {m.name}")
        if not pods:
            problems.append(f"Service {m.name} selects no Ready pod (selector {sel})")
        elif got != pods:
            problems.append(f"Service {m.name}: endpoints {sorted(got)} != Ready pods {sorted(pods)}")
    assert not problems, f"overlay {overlay}:\n" + "\n".join(problems)
    assert want_pods > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_custom_resources_are_accepted(overlay: str, installs: dict[str, Release | Exception],
                                               cluster: k8s.Cluster, helm: k8s.Helm) -> None:
    rel = installed(installs, overlay)
    manifests = helm.manifests(rel.name, rel.namespace)
    made = {m.kind for m in manifests}
    missing = expected_cr_kinds(merged_values(overlay)) - made
    assert not missing, f"overlay {overlay} turns on features whose objects were not installed: {sorted(missing)}"
    if (merged_values(overlay).get("observability") or {}).get("enabled"):
        assert made & {"ServiceMonitor", "PodMonitor"}, f"overlay {overlay} enables observability but nothing scrapes"
    for m in manifests:
        group = CR_GROUPS.get(m.kind)
        if group is None:
            continue
        assert m.obj["apiVersion"].split("/")[0] == group, f"{m}: unexpected apiVersion {m.obj['apiVersion']}"
        assert cluster.get(m.obj["apiVersion"], m.kind, m.name, ns_of(m, rel)) is not None, \
            f"{m} is in the release but not on the API server"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_objects_pass_strict_server_validation(overlay: str, installs: dict[str, Release | Exception],
                                                       cluster: k8s.Cluster, helm: k8s.Helm) -> None:
    """The API server prunes unknown fields silently; strict field validation says when it would."""
    rel = installed(installs, overlay)
    docs = []
    for m in helm.manifests(rel.name, rel.namespace):
        obj = dict(m.obj)
        res = cluster.dynamic.resources.get(api_version=obj["apiVersion"], kind=m.kind)
        if res.namespaced:
            obj["metadata"] = {**obj["metadata"], "namespace": ns_of(m, rel)}
        docs.append(obj)
    text = yaml.safe_dump_all(docs)
    proc = subprocess.run(
        [helm_tools.tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), "apply",
         "--server-side", "--force-conflicts", "--field-manager", "e2e-strict-check", "--dry-run=server",
         "--validate=strict", "-f", "-"],
        input=text, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Warning" not in proc.stderr, \
        f"overlay {overlay}: the API server rejects or prunes fields:\n{proc.stderr}"
