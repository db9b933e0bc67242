"""The two kube-state-metrics series the chart's alerts and dashboards read, served from the live API.

kube-state-metrics cannot be built here (the Go module proxy refuses k8s.io/kube-state-metrics/v2), so
this exposes kube_deployment_spec_replicas and kube_deployment_status_replicas_available for the
Deployments of one namespace, with kube-state-metrics' names and labels (namespace, deployment), read
from the API server at every scrape.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests import k8s

from .procs import HOST, free_port


class DeploymentMetrics:
    def __init__(self, cluster: k8s.Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.port = free_port()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self) -> str:
        lines = ["# TYPE kube_deployment_spec_replicas gauge",
                 "# TYPE kube_deployment_status_replicas_available gauge"]
        for d in self.cluster.deployments(self.namespace):
            lbl = f'namespace="{self.namespace}",deployment="{d.metadata.name}"'
            lines.append(f"kube_deployment_spec_replicas{{{lbl}}} {d.spec.replicas or 0}")
            lines.append(f"kube_deployment_status_replicas_available{{{lbl}}} {d.status.available_replicas or 0}")
        return "\n".join(lines) + "\n"

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
