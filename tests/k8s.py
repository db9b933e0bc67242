"""Reaches a Kubernetes cluster for the e2e tests: the kubeconfig, API clients, helm releases, waits.

The one module that knows how to talk to a cluster. Any cluster works: $KUBECONFIG, else the file that
scripts/cluster-up.sh writes ($LLM_STACK_CACHE/kubeconfig). A cluster that cannot be reached raises
ClusterUnreachable with a message that says what to do; the e2e conftest turns it into a test failure.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from tests import helm as helm_tools

CACHE = helm_tools.CACHE
DEFAULT_KUBECONFIG = CACHE / "kubeconfig"
GPU = "nvidia.com/gpu"
GPU_PRODUCT = "nvidia.com/gpu.product"
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
# Labels that mark what the e2e harness itself creates, so teardown finds it even after a crash.
E2E_LABEL = "llm-stack.io/e2e"
PV_POOL_LABEL = "llm-stack.io/pool=local"

T = TypeVar("T")


class ClusterUnreachable(RuntimeError):
    pass


class HelmError(RuntimeError):
    pass


def kubeconfig_path() -> Path:
    """$KUBECONFIG (first entry), else the kubeconfig that scripts/cluster-up.sh writes."""
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first).expanduser() if first else DEFAULT_KUBECONFIG


def runtime_hint() -> str:
    rt = os.environ.get("CLUSTER_RUNTIME", "kwok")
    prefix = "" if rt == "kwok" else f"CLUSTER_RUNTIME={rt} "
    return f"start one with `{prefix}scripts/cluster-up.sh`, or point KUBECONFIG at a running cluster"


# --- waiting --------------------------------------------------------------------------------------
def wait_until(
    check: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
    state: Callable[[], str] | None = None,
) -> T:
    """Poll `check` until it returns something truthy; TimeoutError says what and (optionally) the state."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f"\n{state()}" if state else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# --- the cluster --------------------------------------------------------------------------------------
@dataclass
class Cluster:
    """API clients for one cluster, plus the queries the e2e tests share."""

    kubeconfig: Path
    api: client.ApiClient
    core: client.CoreV1Api = field(init=False)
    apps: client.AppsV1Api = field(init=False)
    batch: client.BatchV1Api = field(init=False)
    policy: client.PolicyV1Api = field(init=False)
    discovery: client.DiscoveryV1Api = field(init=False)
    _dynamic: DynamicClient | None = field(default=None, init=False, repr=False)
    _dyn_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    @property
    def dynamic(self) -> DynamicClient:
        with self._dyn_lock:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api)
            return self._dynamic

    # -- what kind of cluster --
    def runtime(self) -> str:
        """kwok when the GPU nodes are KWOK nodes, else kind (or whatever CLUSTER_RUNTIME says)."""
        nodes = self.core.list_node(label_selector=GPU_PRODUCT).items
        if nodes and all((n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake" for n in nodes):
            return "kwok"
        return os.environ.get("CLUSTER_RUNTIME", "kind")

    def gpu_nodes(self, product: str | None = None) -> list[client.V1Node]:
        sel = f"{GPU_PRODUCT}={product}" if product else GPU_PRODUCT
        return [n for n in self.core.list_node(label_selector=sel).items if int(gpu_of(n.status.allocatable)) > 0]

    def gpu_requested_on(self, node: str) -> int:
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
        return sum(pod_gpus(p) for p in pods if p.status.phase not in ("Succeeded", "Failed"))

    def free_gpus(self, product: str) -> dict[str, int]:
        """Unrequested GPUs per node of one product."""
        return {n.metadata.name: int(gpu_of(n.status.allocatable)) - self.gpu_requested_on(n.metadata.name)
                for n in self.gpu_nodes(product)}

    # -- namespaces --
    def create_namespace(self, name: str) -> None:
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={E2E_LABEL: "true"}))
        self.core.create_namespace(body)

    def delete_namespace(self, name: str, *, wait: float = 0) -> None:
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(name)
        if wait:
            wait_until(lambda: not self.namespace_exists(name), timeout=wait, what=f"namespace {name} to go")

    def namespace_exists(self, name: str) -> bool:
        try:
            self.core.read_namespace(name)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise

    # -- workloads --
    def deployments(self, ns: str, selector: str = "") -> list[client.V1Deployment]:
        return self.apps.list_namespaced_deployment(ns, label_selector=selector).items

    def pods(self, ns: str, selector: str = "") -> list[client.V1Pod]:
        return [p for p in self.core.list_namespaced_pod(ns, label_selector=selector).items
                if p.metadata.deletion_timestamp is None]

    def ready_pods(self, ns: str, selector: str = "") -> list[client.V1Pod]:
        return [p for p in self.pods(ns, selector) if pod_ready(p)]

    def deployment_rolled_out(self, d: client.V1Deployment) -> bool:
        s, want = d.status, d.spec.replicas if d.spec.replicas is not None else 1
        return bool(
            (s.observed_generation or 0) >= d.metadata.generation
            and (s.updated_replicas or 0) == want
            and (s.ready_replicas or 0) == want
            and (s.available_replicas or 0) == want
            and (s.replicas or 0) == want
        )

    def wait_rolled_out(self, ns: str, name: str, timeout: float = 60) -> client.V1Deployment:
        def done() -> client.V1Deployment | None:
            d = self.apps.read_namespaced_deployment(name, ns)
            return d if self.deployment_rolled_out(d) else None
        def state() -> str:
            d = self.apps.read_namespaced_deployment(name, ns)
            sel = ",".join(f"{k}={v}" for k, v in d.spec.selector.match_labels.items())
            return f"{describe_deployment(d)}\n{self.pod_summary(ns, sel)}"
        return wait_until(done, timeout=timeout, what=f"Deployment {ns}/{name} to roll out", state=state)

    def wait_pods_ready(self, ns: str, selector: str, count: int, timeout: float = 60) -> list[client.V1Pod]:
        return wait_until(
            lambda: (lambda ps: ps if len(ps) >= count else None)(self.ready_pods(ns, selector)),
            timeout=timeout, what=f"{count} Ready pods matching {selector!r} in {ns}",
            state=lambda: self.pod_summary(ns, selector))

    def pod_summary(self, ns: str, selector: str = "") -> str:
        lines = []
        for p in self.pods(ns, selector):
            why = next((f" ({c.reason}: {c.message})" for c in p.status.conditions or []
                        if c.type == "PodScheduled" and c.status != "True"), "")
            lines.append(f"  {p.metadata.name}: {p.status.phase} ready={pod_ready(p)} node={p.spec.node_name}{why}")
        return "\n".join(lines) or "  (no pods)"

    def endpoint_ips(self, ns: str, service: str) -> set[str]:
        """Ready endpoint addresses of a Service, from its EndpointSlices."""
        slices = self.discovery.list_namespaced_endpoint_slice(
            ns, label_selector=f"kubernetes.io/service-name={service}").items
        return {a for s in slices for e in (s.endpoints or [])
                if e.conditions is None or e.conditions.ready is not False for a in e.addresses}

    def events(self, ns: str, *, involved: str | None = None, reason: str | None = None) -> list[client.CoreV1Event]:
        sel = ",".join(f for f in (f"involvedObject.name={involved}" if involved else "",
                                   f"reason={reason}" if reason else "") if f)
        return self.core.list_namespaced_event(ns, field_selector=sel).items

    # -- generic objects (CRs included) --
    def get(self, api_version: str, kind: str, name: str, ns: str | None) -> Any | None:
        try:
            res = self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as e:
            raise AssertionError(f"the API server has no {kind} in {api_version}: is its CRD installed?") from e
        try:
            return res.get(name=name, namespace=ns if res.namespaced else None)
        except NotFoundError:
            return None

    def namespaced_objects(self, ns: str) -> list[tuple[str, str]]:
        """(Kind, name) of every object in a namespace, over every listable namespaced API resource."""
        out: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for res in self.dynamic.resources.search(namespaced=True):
            if "list" not in (res.verbs or []) or "/" in res.name or res.kind in ("Event",):
                continue
            if (res.group, res.kind) in seen:
                continue
            seen.add((res.group, res.kind))
            try:
                items = res.get(namespace=ns).items
            except Exception:  # noqa: BLE001 - aggregated APIs that are not served are not our objects
                continue
            out += [(res.kind, i.metadata.name) for i in items]
        return out

    # -- nodes (KWOK) --
    def add_kwok_gpu_nodes(self, names: Sequence[str], product: str, zones: Sequence[str] = ("zone-a", "zone-b")) -> None:
        """KWOK GPU nodes shaped like those of scripts/cluster-up.sh (labels, taint, 8 GPUs)."""
        nodes = self.dynamic.resources.get(api_version="v1", kind="Node")
        for i, name in enumerate(names):
            nodes.create(body=kwok_gpu_node(name, product, zones[i % len(zones)]))
        wait_until(lambda: all(node_ready(self.core.read_node(n)) for n in names), timeout=60,
                   what=f"{len(names)} KWOK nodes to become Ready")

    def delete_nodes(self, names: Iterable[str]) -> None:
        for n in names:
            with contextlib.suppress(ApiException):
                self.core.delete_node(n)

    # -- the static volume pool of the KWOK cluster --
    def recycle_pool_volumes(self) -> None:
        """Hand Released pool volumes back (their claim was deleted), as scripts/cluster-up.sh does."""
        for pv in self.core.list_persistent_volume(label_selector=PV_POOL_LABEL).items:
            if pv.status.phase == "Released":
                with contextlib.suppress(ApiException):
                    self.core.patch_persistent_volume(pv.metadata.name, [{"op": "remove", "path": "/spec/claimRef"}])


def connect(kubeconfig: Path | None = None, *, timeout: float = 5) -> Cluster:
    """A Cluster for this kubeconfig, after checking that the API server answers /readyz."""
    path = kubeconfig or kubeconfig_path()
    if not path.is_file():
        source = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default"
        raise ClusterUnreachable(f"no kubeconfig at {path} (from {source}); {runtime_hint()}")
    try:
        api = config.new_client_from_config(config_file=str(path))
    except Exception as e:  # noqa: BLE001 - any parse error is a bad kubeconfig
        raise ClusterUnreachable(f"kubeconfig {path} is not usable: {e}; {runtime_hint()}") from e
    host = api.configuration.host
    try:
        req = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
        resp = api.call_api(*req, _request_timeout=timeout)
        resp.read()
        body = resp.data
    except Exception as e:  # noqa: BLE001 - connection refused, TLS, timeouts: all mean unreachable
        raise ClusterUnreachable(
            f"the API server at {host} (kubeconfig {path}) does not answer: {type(e).__name__}: {str(e).splitlines()[0]}; "
            f"{runtime_hint()}") from e
    if body.strip() != b"ok":
        raise ClusterUnreachable(f"the API server at {host} is not ready (/readyz said {body[:200]!r})")
    return Cluster(path, api)


# --- object helpers -----------------------------------------------------------------------------------
def gpu_of(resources: dict[str, str] | None) -> int:
    return int((resources or {}).get(GPU, 0))


def pod_gpus(p: client.V1Pod) -> int:
    """GPUs a pod holds: its containers' limits (or requests) of nvidia.com/gpu."""
    total = 0
    for c in p.spec.containers:
        res = c.resources
        total += gpu_of(res.limits if res else None) or gpu_of(res.requests if res else None)
    return total


def pod_ready(p: client.V1Pod) -> bool:
    return p.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))


def node_ready(n: client.V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))


def describe_deployment(d: client.V1Deployment) -> str:
    s = d.status
    return (f"  {d.metadata.name}: spec.replicas={d.spec.replicas} replicas={s.replicas} updated={s.updated_replicas} "
            f"ready={s.ready_replicas} available={s.available_replicas} generation={d.metadata.generation}/"
            f"{s.observed_generation} conditions={[(c.type, c.status, c.reason) for c in (s.conditions or [])]}")


def kwok_gpu_node(name: str, product: str, zone: str, gpus: int = 8) -> dict[str, Any]:
    """The Node shape of scripts/cluster-up.sh's node_manifest, for a GPU node."""
    res = {"cpu": "96", "memory": "1Ti", "pods": "110", "ephemeral-storage": "2Ti", GPU: str(gpus)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {HOSTNAME: name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok",
                       ZONE: zone, "topology.kubernetes.io/region": "local", GPU_PRODUCT: product,
                       "nvidia.com/gpu.present": "true", "llm-stack.io/node-pool": "gpu", E2E_LABEL: "true"},
        },
        "spec": {"taints": [{"key": GPU, "value": "present", "effect": "NoSchedule"}]},
        "status": {"allocatable": res, "capacity": res, "phase": "Running",
                   "nodeInfo": {"architecture": "amd64", "kubeletVersion": "fake", "kubeProxyVersion": "fake",
                                "operatingSystem": "linux"}},
    }


def unique(prefix: str, n: int = 5) -> str:
    """A DNS-label-safe unique name."""
    return f"{prefix}-{uuid.uuid4().hex[:n]}"


@contextlib.contextmanager
def watch_deployment(cluster: Cluster, ns: str, name: str) -> Iterator[list[client.V1Deployment]]:
    """Records every state of one Deployment while the block runs (a watch on a background thread)."""
    seen: list[client.V1Deployment] = []
    stop = threading.Event()
    w = watch.Watch()
    started = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                started.set()
                for ev in w.stream(cluster.apps.list_namespaced_deployment, ns,
                                   field_selector=f"metadata.name={name}", timeout_seconds=5):
                    seen.append(ev["object"])
                    if stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - a dropped watch is restarted; the list below fills gaps
                time.sleep(0.1)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(5)
    try:
        yield seen
    finally:
        time.sleep(0.5)
        stop.set()
        w.stop()
        t.join(10)


# --- helm -----------------------------------------------------------------------------------------
@dataclass
class Helm:
    """The pinned helm binary against one cluster."""

    kubeconfig: Path
    binary: str = field(default_factory=lambda: helm_tools.tool("helm"))

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, *args, "--kubeconfig", str(self.kubeconfig)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=helm_tools.ROOT)
        if check and proc.returncode != 0:
            raise HelmError(f"`helm {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
        return proc

    def install(self, release: str, ns: str, values: Sequence[Path] = (), sets: Sequence[str] = (), *,
                wait: bool = True, timeout: str = "120s", chart: Path = helm_tools.CHART,
                upgrade: bool = False) -> subprocess.CompletedProcess[str]:
        args = ["upgrade" if upgrade else "install", release, str(chart), "--namespace", ns]
        if wait:
            args += ["--wait", "--wait-for-jobs", "--timeout", timeout]
        for v in values:
            args += ["--values", str(v)]
        for s in sets:
            args += ["--set", s]
        return self.run(*args)

    def upgrade(self, release: str, ns: str, values: Sequence[Path] = (), sets: Sequence[str] = (),
                **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.install(release, ns, values, sets, upgrade=True, **kw)

    def uninstall(self, release: str, ns: str, *, wait: bool = True) -> subprocess.CompletedProcess[str]:
        args = ["uninstall", release, "--namespace", ns]
        if wait:
            args += ["--wait", "--timeout", "120s"]
        return self.run(*args)

    def rollback(self, release: str, ns: str, revision: int, *, wait: bool = True) -> subprocess.CompletedProcess[str]:
        args = ["rollback", release, str(revision), "--namespace", ns]
        if wait:
            args += ["--wait", "--timeout", "120s"]
        return self.run(*args)

    def history(self, release: str, ns: str) -> list[dict[str, Any]]:
        return json.loads(self.run("history", release, "--namespace", ns, "--output", "json").stdout)

    def manifests(self, release: str, ns: str) -> list[helm_tools.Manifest]:
        return helm_tools.parse_manifests(self.run("get", "manifest", release, "--namespace", ns).stdout)

    def releases(self, ns: str) -> list[str]:
        out = self.run("list", "--namespace", ns, "--all", "--short", check=False).stdout
        return out.split()


def write_values(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path
