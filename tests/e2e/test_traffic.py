"""Part 5: canary and blue/green. Each `helm upgrade` moves the HTTPRoute weights and the Service
selectors, and the Services' endpoints follow the right pods."""
from __future__ import annotations

from typing import Any

from tests import k8s
from tests.e2e import stack
from tests.e2e.conftest import Release, Releases

NAME = "shift"
STABLE_REPLICAS, CANARY_REPLICAS = 2, 1


def ips_of_deployment(cluster: k8s.Cluster, ns: str, name: str) -> set[str]:
    d = cluster.wait_rolled_out(ns, name)
    sel = ",".join(f"{k}={v}" for k, v in d.spec.selector.match_labels.items())
    pods = cluster.ready_pods(ns, sel)
    assert len(pods) == d.spec.replicas, cluster.pod_summary(ns, sel)
    return {p.status.pod_ip for p in pods}


def endpoints_follow(cluster: k8s.Cluster, ns: str, service: str, want: set[str]) -> None:
    try:
        k8s.wait_until(lambda: cluster.endpoint_ips(ns, service) == want, timeout=20,
                       what=f"Service {service}'s endpoints to be {sorted(want)}")
    except TimeoutError:
        raise AssertionError(f"Service {service} has endpoints {sorted(cluster.endpoint_ips(ns, service))}, "
                             f"want the pods {sorted(want)}") from None


def route_weights(cluster: k8s.Cluster, ns: str, fullname: str) -> dict[str, int]:
    """backend Service -> weight over the HTTPRoutes that send to the model's tracks (absent weighs 0)."""
    routes = cluster.dynamic.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
    tracks = {f"{fullname}-stable", f"{fullname}-canary"}
    out: dict[str, int] = {}
    found = []
    for route in routes.get(namespace=ns).items:
        refs = [b for rule in route.spec.rules or [] for b in rule.backendRefs or []]
        if not any(b.name in tracks for b in refs):
            continue
        found.append(route.metadata.name)
        for b in refs:
            out[b.name] = out.get(b.name, 0) + (b.weight if b.weight is not None else 1)
    assert found, f"no HTTPRoute in {ns} sends traffic to {sorted(tracks)}"
    return out


def canary(weight: int) -> dict[str, Any]:
    # The weighted HTTPRoute is applied by the mesh (Linkerd GAMMA): the chart renders it with the mesh on.
    return stack.values(stack.model(NAME, product=stack.A100, replicas=STABLE_REPLICAS, rollout={
        "strategy": "canary",
        "canary": {"weight": weight, "replicas": CANARY_REPLICAS,
                   "vllm": {"engine": {"maxNumSeqs": 32}}}}), mesh=True)


def blue_green(active: str) -> dict[str, Any]:
    return stack.values(stack.model(NAME, product=stack.A100, replicas=1, rollout={
        "strategy": "blueGreen",
        "blueGreen": {"active": active, "green": {"engine": {"maxNumSeqs": 32}}}}))


def apply(releases: Releases, rel: Release | None, name: str, values: dict[str, Any]) -> Release:
    path = releases.values_file(name, values)
    if rel is None:
        return releases.install("traffic", [path])
    releases.helm.upgrade(rel.name, rel.namespace, [path], rel.sets, timeout="60s")
    return rel


def test_canary_weights_and_endpoints_follow_each_upgrade(releases: Releases, cluster: k8s.Cluster) -> None:
    rel: Release | None = None
    for step, weight in enumerate([0, 30, 100, 0]):
        rel = apply(releases, rel, f"canary-{step}", canary(weight))
        ns, full = rel.workload_namespace, stack.fullname(rel.name, NAME)
        stable, canary_ips = ips_of_deployment(cluster, ns, full), ips_of_deployment(cluster, ns, f"{full}-canary")
        assert stable.isdisjoint(canary_ips)
        weights = route_weights(cluster, ns, full)
        got = {"stable": weights.get(f"{full}-stable", 0), "canary": weights.get(f"{full}-canary", 0)}
        assert got == {"stable": 100 - weight, "canary": weight}, \
            f"step {step} (canary weight {weight}): HTTPRoute weights {weights}"
        svc = {s: cluster.core.read_namespaced_service(f"{full}-{s}", ns).spec.selector for s in ("stable", "canary")}
        for track in ("stable", "canary"):
            assert svc[track].get("llm-stack.io/track") == track, f"Service {full}-{track} selects {svc[track]}"
        endpoints_follow(cluster, ns, f"{full}-stable", stable)
        endpoints_follow(cluster, ns, f"{full}-canary", canary_ips)
        endpoints_follow(cluster, ns, full, stable | canary_ips)


def test_blue_green_switch_moves_the_service_to_the_active_color(releases: Releases, cluster: k8s.Cluster) -> None:
    rel: Release | None = None
    for step, active in enumerate(["blue", "green", "blue"]):
        rel = apply(releases, rel, f"bg-{step}", blue_green(active))
        ns, full = rel.workload_namespace, stack.fullname(rel.name, NAME)
        ips = {c: ips_of_deployment(cluster, ns, f"{full}-{c}") for c in ("blue", "green")}
        selector = cluster.core.read_namespaced_service(full, ns).spec.selector
        assert selector.get("llm-stack.io/track") == active, f"step {step}: Service {full} selects {selector}"
        endpoints_follow(cluster, ns, full, ips[active])
        # The preview Service reaches the idle color, for checks before the next switch.
        idle = "green" if active == "blue" else "blue"
        endpoints_follow(cluster, ns, f"{full}-preview", ips[idle])
