"""KEDA (operator + metrics API server) and prometheus-adapter as local processes, registered with the
local API server as aggregated APIs.

The APIService points at a Service of type ExternalName `localhost` (what kwokctl does for
metrics-server): the aggregator resolves it to this host without --enable-aggregator-routing, and an
EndpointSlice could not hold a loopback address anyway. TLS: one self-signed CA per run signs a serving
certificate for localhost/127.0.0.1 and the Service's DNS name; its CA is the APIService's caBundle.
The processes use the cluster's admin kubeconfig (no RBAC objects needed); the aggregator's proxy client
certificate is checked against the cluster CA (--client-ca-file).
"""
from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from tests import helm as helm_tools
from tests import k8s

from .procs import HOST, Procs, binary, free_port, wait_for

KEDA_NS = "keda"


def make_certs(d: Path, dns: list[str]) -> Path:
    """ca.crt, tls.crt, tls.key in d (the layout KEDA's --cert-dir expects), serving and client usage."""
    d.mkdir(parents=True, exist_ok=True)
    san = ",".join([f"DNS:{n}" for n in ["localhost", *dns]] + [f"IP:{HOST}"])
    ext = d / "ext.cnf"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=llm-stack-e2e-ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost")
    ossl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tls.crt",
         "-days", "2", "-extfile", str(ext))
    return d


def cluster_ca(kubeconfig: Path) -> Path:
    """The cluster CA file (kwokctl keeps it beside the kubeconfig it was created with)."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    if "certificate-authority" in cluster:
        return Path(cluster["certificate-authority"])
    out = kubeconfig.parent / "e2e-cluster-ca.crt"
    out.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    return out


@dataclass
class AggregatedAPI:
    """Registers APIServices for this host's port; restores what was there before on close()."""

    cluster: k8s.Cluster
    service: str
    namespace: str
    port: int
    ca: Path
    groups: list[tuple[str, str]]          # (group, version)
    _saved: dict[str, Any] = field(default_factory=dict)

    def register(self) -> None:
        core = self.cluster.core
        with contextlib.suppress(ApiException):
            core.create_namespace({"metadata": {"name": self.namespace, "labels": {k8s.E2E_LABEL: "true"}}})
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": self.service, "namespace": self.namespace, "labels": {k8s.E2E_LABEL: "true"}},
               "spec": {"type": "ExternalName", "externalName": "localhost"}}
        with contextlib.suppress(ApiException):
            core.delete_namespaced_service(self.service, self.namespace)
        core.create_namespaced_service(self.namespace, svc)
        api = self.cluster.dynamic.resources.get(api_version="apiregistration.k8s.io/v1", kind="APIService")
        for group, version in self.groups:
            name = f"{version}.{group}"
            with contextlib.suppress(Exception):
                old = api.get(name=name).to_dict()
                if k8s.E2E_LABEL not in (old["metadata"].get("labels") or {}):
                    self._saved[name] = old
                api.delete(name=name)
            api.create(body={
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": name, "labels": {k8s.E2E_LABEL: "true"}},
                "spec": {"group": group, "version": version, "groupPriorityMinimum": 100, "versionPriority": 100,
                         "service": {"name": self.service, "namespace": self.namespace, "port": self.port},
                         "caBundle": base64.b64encode(self.ca.read_bytes()).decode()},
            })

    def wait_available(self, timeout: float = 60) -> None:
        api = self.cluster.dynamic.resources.get(api_version="apiregistration.k8s.io/v1", kind="APIService")

        def ok() -> bool:
            for group, version in self.groups:
                conds = api.get(name=f"{version}.{group}").to_dict()["status"].get("conditions") or []
                if not any(c["type"] == "Available" and c["status"] == "True" for c in conds):
                    return False
            return True
        wait_for(ok, timeout, f"APIServices {self.groups} to be Available", interval=1)

    def close(self) -> None:
        api = self.cluster.dynamic.resources.get(api_version="apiregistration.k8s.io/v1", kind="APIService")
        for group, version in self.groups:
            name = f"{version}.{group}"
            with contextlib.suppress(Exception):
                api.delete(name=name)
            if name in self._saved:
                old = self._saved[name]
                for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
                    old["metadata"].pop(k, None)
                old.pop("status", None)
                with contextlib.suppress(Exception):
                    api.create(body=old)
        with contextlib.suppress(ApiException):
            self.cluster.core.delete_namespaced_service(self.service, self.namespace)


def _server_flags(kubeconfig: Path, certs: Path, client_ca: Path, port: int) -> list[str]:
    return [f"--secure-port={port}", f"--bind-address={HOST}", f"--tls-cert-file={certs / 'tls.crt'}",
            f"--tls-private-key-file={certs / 'tls.key'}", f"--client-ca-file={client_ca}",
            f"--lister-kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}"]


def ensure_keda_eventing_crds(cluster: k8s.Cluster) -> None:
    """keda-operator also runs the CloudEventSource controllers and stops when their CRDs are missing;
    scripts/fetch-crds.sh installs only keda.sh_*, so install eventing.keda.sh_* from the pinned module."""
    api = cluster.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = ["cloudeventsources.eventing.keda.sh", "clustercloudeventsources.eventing.keda.sh"]
    missing = []
    for n in names:
        try:
            api.get(name=n)
        except Exception:  # noqa: BLE001 - NotFound
            missing.append(n)
    if not missing:
        return
    version = helm_tools.versions()["KEDA_VERSION"]
    go = shutil.which("go")
    modcache = (go and subprocess.run([go, "env", "GOMODCACHE"], check=False, capture_output=True,
                                      text=True).stdout.strip()) or str(Path.home() / "go" / "pkg" / "mod")
    bases = Path(modcache) / f"github.com/kedacore/keda/v2@{version}" / "config" / "crd" / "bases"
    files = sorted(bases.glob("eventing.keda.sh_*.yaml"))
    if not files:
        raise RuntimeError(f"CRDs {missing} are not installed and {bases} has none; run scripts/bootstrap.sh --only keda")
    for f in files:
        p = subprocess.run([helm_tools.tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), "apply",
                            "--server-side", "-f", str(f)], check=False, capture_output=True, text=True, timeout=60)
        if p.returncode:
            raise RuntimeError(f"kubectl apply {f} failed: {p.stderr}")
    wait_for(lambda: all(api.get(name=n) for n in names), 30, f"CRDs {names}")


def start_keda(procs: Procs, cluster: k8s.Cluster, workdir: Path, watch_namespace: str) -> AggregatedAPI:
    """keda-operator (ScaledObject controller, gRPC metrics service) and keda-adapter (external metrics),
    watching only the test's namespace so that other tests' ScaledObjects on a shared cluster are left alone."""
    kubeconfig = cluster.kubeconfig
    ensure_keda_eventing_crds(cluster)
    certs = make_certs(workdir / "keda-certs", [f"keda-metrics-apiserver.{KEDA_NS}.svc", f"keda-operator.{KEDA_NS}.svc"])
    grpc = free_port()
    env = {"KUBECONFIG": str(kubeconfig), "WATCH_NAMESPACE": watch_namespace, "POD_NAMESPACE": KEDA_NS,
           "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NS, "KEDA_HTTP_DEFAULT_TIMEOUT": "5000"}
    hint = "scripts/bootstrap.sh --only keda"
    procs.start("keda-operator", [
        binary("keda-operator", hint), f"--metrics-bind-address={HOST}:{free_port()}",
        f"--health-probe-bind-address={HOST}:{free_port()}", f"--metrics-service-bind-address={HOST}:{grpc}",
        f"--cert-dir={certs}", f"--ca-dir={certs}", "--leader-elect=false", "--enable-cert-rotation=false",
        "--zap-log-level=info",
    ], env)
    port = free_port()
    procs.start("keda-adapter", [
        binary("keda-adapter", hint), *_server_flags(kubeconfig, certs, cluster_ca(kubeconfig), port),
        f"--cert-dir={certs}", f"--metrics-service-address={HOST}:{grpc}", f"--port={free_port()}",
    ], env)
    api = AggregatedAPI(cluster, "keda-metrics-apiserver", KEDA_NS, port, certs / "ca.crt",
                        [("external.metrics.k8s.io", "v1beta1")])
    return _serve(api, procs, "keda-adapter")


def _serve(api: AggregatedAPI, procs: Procs, name: str) -> AggregatedAPI:
    """Register the APIService and wait until the API server calls it Available; on timeout, show why."""
    api.register()
    try:
        api.wait_available(90)
    except TimeoutError as e:
        procs.check_alive()
        raise AssertionError(f"{e}\n{name} log:\n{procs.procs[-1].tail()}") from None
    return api


def start_prometheus_adapter(procs: Procs, cluster: k8s.Cluster, workdir: Path, prom_url: str,
                             config: dict[str, Any]) -> AggregatedAPI:
    """prometheus-adapter with the chart's rules, serving custom and external metrics."""
    kubeconfig = cluster.kubeconfig
    certs = make_certs(workdir / "adapter-certs", ["prometheus-adapter.monitoring.svc"])
    cfg = workdir / "adapter-config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    procs.start("prometheus-adapter", [
        binary("prometheus-adapter", "scripts/bootstrap.sh --only prom"),
        *_server_flags(kubeconfig, certs, cluster_ca(kubeconfig), port), f"--cert-dir={certs}",
        f"--prometheus-url={prom_url}", f"--config={cfg}", "--metrics-relist-interval=5s", "--v=1",
    ], {"KUBECONFIG": str(kubeconfig)})
    api = AggregatedAPI(cluster, "prometheus-adapter", "monitoring", port, certs / "ca.crt",
                        [("custom.metrics.k8s.io", "v1beta1"), ("external.metrics.k8s.io", "v1beta1")])
    return _serve(api, procs, "prometheus-adapter")
