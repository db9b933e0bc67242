"""Fixtures of the cluster e2e tests: the cluster, helm against it, releases that clean up after themselves.

Every test in this directory carries the `e2e` marker. Selecting it without a reachable cluster fails each
test with the reason and what to do, never skips: a green e2e run must mean the cluster said yes.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import helm as helm_tools
from tests import k8s

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: the marker must be there before `-m` deselects.
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


class ClusterUnreachableFailure(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """Raised by the `cluster` fixture; reported as the test's failure (not a setup error) below."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    # A missing cluster is the test failing, not the harness breaking: show it as FAILED, never as
    # a skip, and not as an ERROR that a reader could take for a broken fixture.
    if report.when == "setup" and call.excinfo is not None and call.excinfo.errisinstance(ClusterUnreachableFailure):
        report.when = "call"


_connection: dict[str, Any] = {}
_connection_lock = threading.Lock()


def _connect() -> k8s.Cluster:
    with _connection_lock:
        if "cluster" not in _connection and "error" not in _connection:
            try:
                _connection["cluster"] = k8s.connect()
            except k8s.ClusterUnreachable as e:
                _connection["error"] = str(e)
    if "error" in _connection:
        raise ClusterUnreachableFailure(f"e2e: cannot reach a Kubernetes cluster: {_connection['error']}",
                                        pytrace=False)
    return _connection["cluster"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"llm-stack e2e: kubeconfig {k8s.kubeconfig_path()}"]


@pytest.fixture(scope="session")
def cluster() -> k8s.Cluster:
    c = _connect()
    c.recycle_pool_volumes()
    return c


@pytest.fixture(scope="session")
def helm(cluster: k8s.Cluster) -> k8s.Helm:
    try:
        return k8s.Helm(cluster.kubeconfig)
    except helm_tools.ToolMissing as e:
        pytest.fail(str(e), pytrace=False)


# LLM_STACK_VALUES_DIR points the suite at other overlays (as LLM_STACK_CHART does for the chart).
VALUES_DIR = Path(os.environ.get("LLM_STACK_VALUES_DIR", helm_tools.VALUES_DIR))


def overlay_file(name: str) -> Path:
    path = VALUES_DIR / f"{name}.yaml"
    if not path.is_file():
        pytest.fail(f"overlay {path} does not exist", pytrace=False)
    return path


@dataclass
class Release:
    """One helm release installed by a test: its namespace, and where its workloads went."""

    name: str
    namespace: str
    workload_namespace: str
    values: list[Path]
    sets: list[str]

    def selector(self, **extra: str) -> str:
        labels = {"app.kubernetes.io/instance": self.name, **extra}
        return ",".join(f"{k}={v}" for k, v in labels.items())


@dataclass
class Releases:
    """Installs releases, each in a fresh namespace; cleans every one of them up."""

    cluster: k8s.Cluster
    helm: k8s.Helm
    tmp: Path
    installed: list[Release] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def values_file(self, name: str, values: dict[str, Any]) -> Path:
        return k8s.write_values(self.tmp / f"{name}.yaml", values)

    def namespace(self, prefix: str) -> str:
        ns = k8s.unique(f"e2e-{prefix}")
        self.cluster.create_namespace(ns)
        with self._lock:
            self.namespaces.append(ns)
        return ns

    def install(self, prefix: str, values: Sequence[Path] = (), sets: Sequence[str] = (), *,
                release: str = "llm", wait: bool = True, timeout: str = "120s") -> Release:
        ns = self.namespace(prefix)
        workload_ns = ns
        sets = list(sets)
        merged: dict[str, Any] = {}
        for v in values:
            merged.update(yaml.safe_load(v.read_text()) or {})
        # An overlay that creates its own Namespace (global.namespace) gets a unique one next to ours.
        if (merged.get("global") or {}).get("namespace"):
            workload_ns = f"{ns}-app"
            sets.append(f"global.namespace={workload_ns}")
            with self._lock:
                self.namespaces.append(workload_ns)
        rel = Release(release, ns, workload_ns, list(values), sets)
        with self._lock:
            self.installed.append(rel)
        self.helm.install(release, ns, values, sets, wait=wait, timeout=timeout)
        return rel

    def upgrade(self, rel: Release, values: Sequence[Path] = (), sets: Sequence[str] = (), **kw: Any) -> None:
        self.helm.upgrade(rel.name, rel.namespace, [*rel.values, *values], [*rel.sets, *sets], **kw)

    def cleanup(self) -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self._uninstall, self.installed))
        for ns in self.namespaces:
            with contextlib.suppress(Exception):
                self.cluster.core.delete_collection_namespaced_persistent_volume_claim(ns)
            self.cluster.delete_namespace(ns)
        # Free the GPUs and volumes before the next test: wait for pods and claims, not whole namespaces
        # (the namespace controller finishes those in the background).
        def gone(ns: str) -> bool:
            if not self.cluster.namespace_exists(ns):
                return True
            return not (self.cluster.core.list_namespaced_pod(ns).items
                        or self.cluster.core.list_namespaced_persistent_volume_claim(ns).items)
        with contextlib.suppress(TimeoutError):
            k8s.wait_until(lambda: all(gone(ns) for ns in self.namespaces), timeout=60,
                           what=f"pods and claims of {self.namespaces} to go")
        self.cluster.recycle_pool_volumes()

    def _uninstall(self, rel: Release) -> None:
        if rel.name in self.helm.releases(rel.namespace):
            with contextlib.suppress(k8s.HelmError):
                self.helm.uninstall(rel.name, rel.namespace, wait=False)


@pytest.fixture
def releases(cluster: k8s.Cluster, helm: k8s.Helm, tmp_path: Path) -> Iterator[Releases]:
    r = Releases(cluster, helm, tmp_path)
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def module_releases(cluster: k8s.Cluster, helm: k8s.Helm,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Releases]:
    r = Releases(cluster, helm, tmp_path_factory.mktemp("values"))
    yield r
    r.cleanup()
