"""The vLLM simulator as the process behind each simulated pod.

KWOK pods run no containers, so PodRunner follows a model's Ready pods on the cluster and keeps one
simulator process per pod, and gives Prometheus the labels that the chart's ServiceMonitor would attach
(namespace, service, pod, job): the queries see the same series shape as on a real cluster.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests import k8s

from .procs import HOST, Proc, Procs, binary, free_port, http_ok, wait_for
from .prom import Prometheus


def sim_binary() -> str:
    """$LLM_STACK_VLLM_SIM (another simulator build, e.g. a work in progress), else the pinned build."""
    override = os.environ.get("LLM_STACK_VLLM_SIM")
    return override or binary("vllm-sim", "scripts/bootstrap.sh --only sim")


@dataclass
class SimOptions:
    """Simulator flags: latencies in milliseconds, failure_rate in percent (0-100) of API requests,
    fake_metrics is the JSON of --fake-metrics."""

    ttft_ms: int = 100
    itl_ms: int = 20
    max_num_seqs: int = 4
    failure_rate: float = 0.0
    fake_metrics: str = ""

    def args(self) -> list[str]:
        out = [f"--time-to-first-token={self.ttft_ms}", f"--inter-token-latency={self.itl_ms}",
               f"--max-num-seqs={self.max_num_seqs}"]
        if self.failure_rate:
            out.append(f"--failure-injection-rate={self.failure_rate}")
        if self.fake_metrics:
            out.append(f"--fake-metrics={self.fake_metrics}")
        return out


@dataclass
class Replica:
    pod: str
    port: int
    proc: Proc

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass
class PodRunner:
    """One simulator per Ready pod of a model's Deployment; targets for Prometheus follow the pods."""

    cluster: k8s.Cluster
    procs: Procs
    prom: Prometheus | None
    namespace: str
    selector: str           # the Deployment's pod selector
    job: str                # Prometheus job (the ServiceMonitor's)
    service: str            # <fullname>-metrics
    model: str
    served: str
    options: SimOptions = field(default_factory=SimOptions)
    on_change: Callable[[list[str]], None] | None = None
    replicas: dict[str, Replica] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    error: str = ""

    def endpoints(self) -> list[str]:
        with self._lock:
            return [r.base_url for r in self.replicas.values()]

    def _start_sim(self, pod: str) -> Replica:
        port = free_port()
        proc = self.procs.start(f"vllm-sim-{pod}", [
            sim_binary(), f"--model={self.model}",
            f"--served-model-name={self.served}", f"--host={HOST}", f"--port={port}", *self.options.args(),
        ])
        wait_for(lambda: http_ok(f"http://{HOST}:{port}/health") or not proc.alive(), 20, f"simulator for {pod}")
        if not proc.alive():
            raise RuntimeError(f"simulator for pod {pod} exited:\n{proc.tail()}")
        return Replica(pod, port, proc)

    def _publish(self) -> None:
        if self.prom is None:
            return
        with self._lock:
            targets = [(f"{HOST}:{r.port}", {"namespace": self.namespace, "service": self.service,
                                              "pod": r.pod, "container": "vllm", "endpoint": "http",
                                              "job": self.service})
                       for r in self.replicas.values()]
        self.prom.set_targets(self.job, targets)

    def sync(self) -> None:
        ready = {p.metadata.name for p in self.cluster.pods(self.namespace, self.selector) if k8s.pod_ready(p)}
        with self._lock:
            have = set(self.replicas)
        changed = False
        for pod in sorted(ready - have):
            r = self._start_sim(pod)
            with self._lock:
                self.replicas[pod] = r
            changed = True
        for pod in sorted(have - ready):
            with self._lock:
                r = self.replicas.pop(pod)
            self.procs.stop(r.proc)
            changed = True
        if changed:
            self._publish()
            if self.on_change:
                self.on_change(sorted(ready))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as e:  # noqa: BLE001 - reported by check(), the loop keeps following pods
                self.error = f"{type(e).__name__}: {e}"
            self._stop.wait(0.5)

    def start(self) -> PodRunner:
        self.sync()
        self._thread = threading.Thread(target=self._loop, name=f"podrunner-{self.served}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        with self._lock:
            reps, self.replicas = list(self.replicas.values()), {}
        for r in reps:
            self.procs.stop(r.proc)
        self._publish()

    def wait_replicas(self, n: int, timeout: float) -> None:
        wait_for(lambda: len(self.endpoints()) == n, timeout, f"{n} simulator replicas of {self.served} "
                 f"(have {len(self.endpoints())}{'; ' + self.error if self.error else ''})")


def wait_metric_names(base_url: str, names: list[str], timeout: float = 20) -> None:
    """The simulator's /metrics lists every name (fails early with the missing ones)."""
    import urllib.request

    missing: list[str] = list(names)

    def check() -> bool:
        nonlocal missing
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=3) as r:
            text = r.read().decode()
        missing = [n for n in names if n not in text]
        return not missing
    with contextlib.suppress(TimeoutError):
        wait_for(check, timeout, "simulator metrics")
    if missing:
        raise AssertionError(f"simulator at {base_url} does not export {missing}")


