"""The local serving stack for one test module: a namespace on the cluster with the chart's Deployments,
one simulator per Ready pod, Prometheus scraping them as the chart's ServiceMonitors would, the chart's
rules loaded, deployment metrics, and a load generator per model."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import helm as helm_tools
from tests import k8s

from . import chart
from .ksm import DeploymentMetrics
from .load import Load
from .procs import HOST, Procs, free_port
from .prom import Prometheus
from .sim import PodRunner, SimOptions


@dataclass
class Stack:
    cluster: k8s.Cluster
    namespace: str
    workdir: Path
    models: list[dict[str, Any]]
    values: dict[str, Any]
    procs: Procs
    prom: Prometheus
    manifests: list[helm_tools.Manifest] = field(default_factory=list)
    runners: dict[str, PodRunner] = field(default_factory=dict)   # by served name
    loads: dict[str, Load] = field(default_factory=dict)
    ksm: DeploymentMetrics | None = None

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m.obj for m in self.manifests if m.kind == kind]

    def apply(self, objs: list[dict[str, Any]]) -> None:
        chart.kubectl_apply(self.cluster.kubeconfig, objs, self.namespace)

    def rerender(self, values: dict[str, Any]) -> list[helm_tools.Manifest]:
        """Render again with other values (same namespace and Prometheus); does not apply."""
        self.values = values
        self.manifests = chart.render(values, self.namespace, self.workdir / f"render-{time.monotonic_ns()}")
        return self.manifests

    def scale(self, model: dict[str, Any], replicas: int) -> None:
        self.cluster.apps.patch_namespaced_deployment_scale(
            chart.fullname(model), self.namespace, {"spec": {"replicas": replicas}})

    def deployment(self, model: dict[str, Any]) -> Any:
        return self.cluster.apps.read_namespaced_deployment(chart.fullname(model), self.namespace)

    def selector(self, model: dict[str, Any]) -> str:
        return ",".join(f"{k}={v}" for k, v in chart.pod_selector(model).items())

    def check(self) -> None:
        self.procs.check_alive()
        errs = [f"{s}: {r.error}" for s, r in self.runners.items() if r.error]
        if errs:
            raise RuntimeError("pod runner errors: " + "; ".join(errs))


@contextlib.contextmanager
def local_stack(cluster: k8s.Cluster, workdir: Path, models: list[dict[str, Any]], *, mode: str = "none",
                autoscaling: dict[str, Any] | None = None, observability: dict[str, Any] | None = None,
                sim: SimOptions | None = None, users: int = 8, prefix: str = "llm-e2e") -> Iterator[Stack]:
    namespace = k8s.unique(prefix)
    procs = Procs(workdir / "logs")
    prom = Prometheus(procs, workdir / "prometheus")
    prom.port = free_port()
    autoscaling = chart.deep_merge(
        {"defaults": {"keda": {"prometheus": {"serverAddress": prom.url}}}} if mode != "none" else {},
        autoscaling or {})
    values = chart.stack_values(models, mode=mode, autoscaling=autoscaling, observability=observability)
    manifests = chart.render(values, namespace, workdir / "render")
    st = Stack(cluster, namespace, workdir, models, values, procs, prom, manifests)
    cluster.create_namespace(namespace)
    try:
        # Scrape jobs as the Prometheus Operator builds them from each ServiceMonitor.
        for sm in st.of_kind("ServiceMonitor"):
            ep = sm["spec"]["endpoints"][0]
            prom.add_job(f"serviceMonitor/{namespace}/{sm['metadata']['name']}/0", ep.get("metricRelabelings"))
        prom.add_job("kube-state-metrics")
        prom.add_job("gateway")
        prom.rule_groups = chart.rule_groups(manifests)
        prom.start()

        st.ksm = DeploymentMetrics(cluster, namespace)
        prom.set_targets("kube-state-metrics", [(st.ksm.target, {"job": "kube-state-metrics"})])

        st.apply(chart.installable(manifests, models, namespace))
        gateway_targets = []
        for m in models:
            served = m.get("servedModelName") or m["model"]
            fn = chart.fullname(m)
            job = f"serviceMonitor/{namespace}/{fn}/0"
            if job not in prom.jobs:
                raise AssertionError(f"the chart rendered no ServiceMonitor {fn} for model {m['name']}")
            runner = PodRunner(cluster, procs, prom, namespace, st.selector(m), job, f"{fn}-metrics",
                               m["model"], served, sim or SimOptions())
            st.runners[served] = runner.start()
            load = Load(runner.endpoints, served, namespace, users=users)
            gateway_targets.append((f"{HOST}:{load.serve_metrics()}", {"job": "gateway"}))
            st.loads[served] = load
        prom.set_targets("gateway", gateway_targets)
        yield st
    finally:
        for load in st.loads.values():
            load.close()
        for r in st.runners.values():
            r.stop()
        if st.ksm:
            st.ksm.close()
        procs.close()
        cluster.delete_namespace(namespace)
