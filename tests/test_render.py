"""What every overlay renders: objects that find each other, pods that can start, nothing that breaks
on upgrade or uninstall. One render per overlay per session (conftest.renders)."""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests import helm
from tests.conftest import overlay_values

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
VERSIONED_LABELS = ("app.kubernetes.io/version", "helm.sh/chart")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
)


def pod_labels(m: helm.Manifest) -> dict[str, str]:
    spec = m.obj.get("spec") or {}
    if m.kind == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def pod_annotations(m: helm.Manifest) -> dict[str, str]:
    return (((m.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_ports(m: helm.Manifest) -> set[Any]:
    spec = helm.pod_spec(m) or {}
    out: set[Any] = set()
    for c in spec.get("containers", []):
        for p in c.get("ports", []):
            out.add(p.get("containerPort"))
            if p.get("name"):
                out.add(p["name"])
    return out


def vllm_deployments(r: helm.Render) -> list[helm.Manifest]:
    return [m for m in r.of_kind("Deployment") if m.labels.get("app.kubernetes.io/name") == "vllm"]


def vllm_container(m: helm.Manifest) -> dict[str, Any]:
    containers = (helm.pod_spec(m) or {}).get("containers", [])
    named = [c for c in containers if c.get("name") in ("vllm", "server")]
    assert named or len(containers) == 1, f"{m}: cannot tell the vLLM container among {[c.get('name') for c in containers]}"
    return (named or containers)[0]


def arg_value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def container_args(c: dict[str, Any]) -> list[str]:
    return [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]


def mesh_on(overlay: str) -> bool:
    return bool(helm.effective_values(overlay_values(overlay)).get("global", {}).get("mesh", {}).get("enabled"))


# --- the model's objects ------------------------------------------------------------------------------
def test_every_model_gets_a_deployment_and_a_service(rendered: helm.Render, overlay: str) -> None:
    models = helm.effective_values(overlay_values(overlay))["global"]["models"]
    for m in models:
        fullname = f"{helm.RELEASE}-{m['name']}"[:52].rstrip("-")
        assert any(d.name.startswith(fullname) for d in rendered.of_kind("Deployment")), f"no Deployment for {fullname}"
        assert rendered.get("Service", fullname), f"no Service {fullname} (the clients' entry point)"


def test_deployment_selector_matches_its_pod_labels(rendered: helm.Render) -> None:
    for d in rendered.of_kind(*WORKLOADS):
        if d.kind in ("Job", "CronJob"):
            continue
        sel = d.obj["spec"]["selector"].get("matchLabels", {})
        assert selects(sel, pod_labels(d)), f"{d}: selector {sel} does not match its pod labels {pod_labels(d)}"


def test_two_deployments_never_select_each_others_pods(rendered: helm.Render) -> None:
    deps = rendered.of_kind("Deployment")
    for a in deps:
        for b in deps:
            if a is not b:
                sel = a.obj["spec"]["selector"].get("matchLabels", {})
                assert not selects(sel, pod_labels(b)), f"{a} selects the pods of {b}: ReplicaSets would fight"


def test_every_service_selects_pods_that_have_its_target_port(rendered: helm.Render) -> None:
    workloads = rendered.of_kind(*WORKLOADS)
    for s in rendered.of_kind("Service"):
        sel = s.obj["spec"].get("selector")
        assert sel, f"{s}: no selector (endpoints would have to be managed by hand)"
        backing = [w for w in workloads if selects(sel, pod_labels(w))]
        assert backing, f"{s}: selector {sel} matches no Deployment's pods"
        for port in s.obj["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for w in backing:
                assert target in container_ports(w), f"{s}: targetPort {target!r} is not a port of {w}"


def test_every_autoscaler_targets_an_existing_deployment(rendered: helm.Render) -> None:
    deployments = {d.name for d in rendered.of_kind("Deployment")}
    for a in rendered.of_kind("HorizontalPodAutoscaler", "ScaledObject"):
        ref = a.obj["spec"]["scaleTargetRef"]
        assert ref.get("kind", "Deployment") == "Deployment", f"{a}: targets a {ref.get('kind')}"
        assert ref["name"] in deployments, f"{a}: targets Deployment {ref['name']!r}, which the chart does not create"


def test_no_model_has_two_autoscalers(rendered: helm.Render) -> None:
    targets = [a.obj["spec"]["scaleTargetRef"]["name"] for a in rendered.of_kind("HorizontalPodAutoscaler", "ScaledObject")]
    # KEDA creates its own HPA (keda-hpa-*), never rendered; a rendered HPA next to a ScaledObject fights it.
    dupes = {t for t in targets if targets.count(t) > 1}
    assert not dupes, f"Deployments {sorted(dupes)} have both an HPA and a ScaledObject"


def test_autoscaled_deployments_leave_replicas_unset(rendered: helm.Render) -> None:
    scaled = {a.obj["spec"]["scaleTargetRef"]["name"] for a in rendered.of_kind("HorizontalPodAutoscaler", "ScaledObject")}
    for d in rendered.of_kind("Deployment"):
        if d.name in scaled:
            assert "replicas" not in d.obj["spec"], f"{d}: sets replicas although an autoscaler owns it (helm upgrade would reset it)"


def test_every_servicemonitor_selects_an_existing_service_port(rendered: helm.Render) -> None:
    services = rendered.of_kind("Service")
    for sm in rendered.of_kind("ServiceMonitor"):
        sel = sm.obj["spec"]["selector"].get("matchLabels", {})
        matched = [s for s in services if selects(sel, s.labels)]
        assert matched, f"{sm}: selector {sel} matches no Service"
        for ep in sm.obj["spec"]["endpoints"]:
            for s in matched:
                names = {p.get("name") for p in s.obj["spec"]["ports"]}
                assert ep.get("port") in names, f"{sm}: endpoint port {ep.get('port')!r} is not a port of {s} ({names})"


def test_every_podmonitor_selects_pods_with_its_port(rendered: helm.Render) -> None:
    workloads = rendered.of_kind("Deployment")
    for pm in rendered.of_kind("PodMonitor"):
        sel = pm.obj["spec"]["selector"].get("matchLabels", {})
        matched = [w for w in workloads if selects(sel, pod_labels(w))]
        assert matched, f"{pm}: selector {sel} matches no Deployment's pods"
        for ep in pm.obj["spec"]["podMetricsEndpoints"]:
            for w in matched:
                ports = set(container_ports(w))
                annotations = w.obj["spec"]["template"]["metadata"].get("annotations", {})
                if annotations.get("linkerd.io/inject") == "enabled":
                    ports.add("linkerd-admin")  # the port of the proxy container that Linkerd injects
                assert ep.get("port") in ports, f"{pm}: port {ep.get('port')!r} is not a port of {w}"


# --- pods that can start and serve --------------------------------------------------------------------
def test_gpu_count_equals_tensor_parallel_size(rendered: helm.Render, overlay: str) -> None:
    for d in vllm_deployments(rendered):
        c = vllm_container(d)
        args = container_args(c)
        tp = int(arg_value(args, "--tensor-parallel-size") or 1)
        pp = int(arg_value(args, "--pipeline-parallel-size") or 1)
        limits = c.get("resources", {}).get("limits", {})
        gpus = limits.get("nvidia.com/gpu")
        if gpus is None:
            # CPU-only serving (the simulator overlay): then nothing may ask for parallelism either.
            assert tp * pp == 1, f"{d}: --tensor-parallel-size {tp} x --pipeline-parallel-size {pp} without GPUs"
            continue
        assert int(gpus) == tp * pp, f"{d}: {gpus} GPUs but tensor x pipeline parallel size is {tp * pp}"
        requests = c.get("resources", {}).get("requests", {})
        if "nvidia.com/gpu" in requests:
            assert int(requests["nvidia.com/gpu"]) == int(gpus), f"{d}: GPU request differs from its limit"


def test_shared_memory_is_sized(rendered: helm.Render) -> None:
    for d in vllm_deployments(rendered):
        spec = helm.pod_spec(d) or {}
        mounts = {m["name"]: m for m in vllm_container(d).get("volumeMounts", [])}
        shm = [m for m in mounts.values() if m.get("mountPath") == "/dev/shm"]
        assert shm, f"{d}: no volume at /dev/shm (NCCL and PyTorch workers need more than the runtime's 64Mi)"
        vol = next(v for v in spec.get("volumes", []) if v["name"] == shm[0]["name"])
        empty = vol.get("emptyDir")
        assert empty is not None and empty.get("medium") == "Memory", f"{d}: /dev/shm must be an emptyDir in Memory"
        assert empty.get("sizeLimit"), f"{d}: the /dev/shm emptyDir has no sizeLimit (it would count unbounded against memory)"


def test_probes_give_the_model_its_load_budget(rendered: helm.Render) -> None:
    for d in vllm_deployments(rendered):
        c = vllm_container(d)
        startup = c.get("startupProbe")
        assert startup, f"{d}: no startupProbe; liveness would kill a pod that is still loading its weights"
        budget = startup.get("initialDelaySeconds", 0) + startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        assert budget >= 60, f"{d}: the startupProbe allows only {budget}s to load the model"
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c.get(kind)
            assert probe, f"{d}: no {kind}"
            http = probe.get("httpGet") or {}
            assert http.get("path", "").startswith("/health"), f"{d}: {kind} does not check /health"
            assert http.get("port") in ("http", 8000), f"{d}: {kind} probes port {http.get('port')!r}, not http"
        # liveness must not be stricter than the load budget allows once started: it needs a few failures
        assert c["livenessProbe"].get("failureThreshold", 3) >= 3, f"{d}: livenessProbe kills after one failed check"


def test_no_image_uses_latest_or_no_tag(rendered: helm.Render) -> None:
    for m in rendered.manifests:
        spec = helm.pod_spec(m)
        if spec is None:
            continue
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            image = c.get("image", "")
            assert image, f"{m}: container {c.get('name')} has no image"
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{m}: image {image!r} has no tag"
            assert tag != "latest", f"{m}: image {image!r} uses latest"


# --- upgrade and uninstall ----------------------------------------------------------------------------
def test_pvcs_and_namespace_survive_uninstall(rendered: helm.Render) -> None:
    for m in rendered.of_kind("PersistentVolumeClaim", "Namespace"):
        assert m.annotations.get("helm.sh/resource-policy") == "keep", (
            f"{m}: lacks helm.sh/resource-policy: keep (helm uninstall would delete the model cache or the namespace)"
        )


def test_no_selector_holds_a_version(rendered: helm.Render) -> None:
    for m in rendered.manifests:
        for path, node in helm.walk(m.obj):
            last = re.split(r"[.\[]", path)[-1]
            if last in ("selector", "podSelector", "matchLabels", "namespaceSelector") and isinstance(node, dict):
                labels = node.get("matchLabels", node) if last != "matchLabels" else node
                if not isinstance(labels, dict):
                    continue
                bad = [k for k in labels if k in VERSIONED_LABELS]
                assert not bad, f"{m}: {path} holds {bad}; selectors are immutable, so helm upgrade would fail"


def test_every_object_has_the_standard_labels(rendered: helm.Render) -> None:
    for m in rendered.manifests:
        missing = [k for k in STANDARD_LABELS if k not in m.labels]
        assert not missing, f"{m}: lacks labels {missing}"
        assert m.labels.get("app.kubernetes.io/part-of") == "llm-stack", f"{m}: part-of is not llm-stack"


def test_object_names_fit_kubernetes_limits(rendered: helm.Render) -> None:
    for m in rendered.manifests:
        limit = 63 if m.kind in ("Service", "Namespace") else 253
        assert len(m.name) <= limit, f"{m}: name longer than {limit}"
        for k, v in m.labels.items():
            assert len(str(v)) <= 63, f"{m}: label {k}={v!r} longer than 63"


def test_names_are_unique_per_kind(rendered: helm.Render) -> None:
    seen: set[tuple[str, str, str]] = set()
    for m in rendered.manifests:
        key = (m.kind, m.namespace, m.name)
        assert key not in seen, f"two {m.kind} objects named {m.name}"
        seen.add(key)


# --- mesh ------------------------------------------------------------------------------------------------
def _linkerd_annotations(annotations: dict[str, str]) -> list[str]:
    return [k for k in annotations if k.startswith(("linkerd.io/", "config.linkerd.io/", "config.alpha.linkerd.io/"))]


def test_mesh_annotations_where_the_mesh_is_on_and_nowhere_else(rendered: helm.Render, overlay: str) -> None:
    on = mesh_on(overlay)
    for d in vllm_deployments(rendered):
        inject = pod_annotations(d).get("linkerd.io/inject")
        if on:
            assert inject == "enabled", f"{d}: mesh is on but the pods lack the linkerd.io/inject: enabled annotation"
            assert "linkerd.io/inject" not in pod_labels(d), f"{d}: linkerd.io/inject as a label does nothing"
        else:
            assert not _linkerd_annotations(pod_annotations(d)), f"{d}: Linkerd annotations although the mesh is off"
    if not on:
        for m in rendered.manifests:
            assert not _linkerd_annotations(m.annotations), f"{m}: Linkerd annotations although the mesh is off"
            assert not m.obj.get("apiVersion", "").startswith("policy.linkerd.io"), f"{m}: Linkerd policy with the mesh off"


# --- autoscaling queries ---------------------------------------------------------------------------------
def test_keda_queries_use_model_name_and_sum(rendered: helm.Render) -> None:
    for so in rendered.of_kind("ScaledObject"):
        for t in so.obj["spec"]["triggers"]:
            if t["type"] != "prometheus":
                continue
            q = t["metadata"]["query"].strip()
            assert q.startswith("sum(") or q.startswith("sum by"), f"{so}: query is not one sum(...) series: {q}"
            assert "model_name=" in q, f"{so}: query does not select model_name=: {q}"
            assert not re.search(r"[{,]\s*model\s*=", q), f"{so}: query uses model= (vLLM emits model_name): {q}"
            assert 'namespace="' in q, f"{so}: query is not scoped to a namespace: {q}"


@pytest.mark.parametrize("key", ["threshold", "activationThreshold"])
def test_keda_thresholds_are_strings(rendered: helm.Render, key: str) -> None:
    """KEDA's trigger metadata is map[string]string: a number is refused by the API server."""
    for so in rendered.of_kind("ScaledObject"):
        for t in so.obj["spec"]["triggers"]:
            if key in t.get("metadata", {}):
                assert isinstance(t["metadata"][key], str), f"{so}: metadata.{key} is not a string"


def test_httproute_backends_are_services_of_the_chart_with_that_port(rendered: helm.Render) -> None:
    services = {s.name: s for s in rendered.of_kind("Service")}
    for route in rendered.of_kind("HTTPRoute"):
        for ref in route.obj["spec"].get("parentRefs", []):
            if ref.get("kind") == "Service":
                assert ref["name"] in services, f"{route}: parent Service {ref['name']!r} is not rendered"
        for rule in route.obj["spec"].get("rules", []):
            weights = []
            for b in rule.get("backendRefs", []):
                if b.get("kind", "Service") != "Service":
                    continue
                s = services.get(b["name"])
                assert s, f"{route}: backend Service {b['name']!r} is not rendered"
                ports = {p["port"] for p in s.obj["spec"]["ports"]}
                assert b.get("port") in ports, f"{route}: backend {b['name']} port {b.get('port')} not in {ports}"
                weights.append(b.get("weight", 1))
            assert not weights or sum(weights) > 0, f"{route}: every backend has weight 0 (all traffic fails)"
