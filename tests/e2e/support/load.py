"""Load: closed-loop streaming chat completions spread over a model's live replicas (as its Service would),
and a /metrics endpoint for what a gateway in front of the model would see: requests in flight, including
those waiting for a replica to exist (what wakes a model that KEDA scaled to zero)."""
from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .procs import HOST, free_port

INFLIGHT = "llm_stack_e2e_gateway_requests_inflight"


@dataclass
class Load:
    endpoints: Callable[[], list[str]]
    served: str
    namespace: str
    users: int = 16
    max_tokens: int = 24
    inflight: int = 0
    ok: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rr: itertools.count = field(default_factory=itertools.count)
    _server: ThreadingHTTPServer | None = None
    metrics_port: int = 0

    def _one(self) -> None:
        eps = self.endpoints()
        if not eps:
            time.sleep(0.2)  # no replica yet: the request waits at the gateway
            return
        u = urlsplit(eps[next(self._rr) % len(eps)])
        body = json.dumps({"model": self.served, "stream": True, "max_tokens": self.max_tokens,
                           "messages": [{"role": "user", "content": "Count to twenty."}]})
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            while r.read(4096):
                pass
            with self._lock:
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
        except OSError:
            with self._lock:
                self.failed += 1
            time.sleep(0.1)
        finally:
            conn.close()

    def _user(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self.inflight += 1
            try:
                self._one()
            finally:
                with self._lock:
                    self.inflight -= 1

    def serve_metrics(self) -> int:
        """Start the gateway-style /metrics endpoint; returns its port."""
        load = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                text = (f"# TYPE {INFLIGHT} gauge\n"
                        f'{INFLIGHT}{{namespace="{load.namespace}",model_name="{load.served}"}} {load.inflight}\n')
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *_: object) -> None:
                pass

        self.metrics_port = free_port()
        self._server = ThreadingHTTPServer((HOST, self.metrics_port), H)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.metrics_port

    def start(self, users: int | None = None) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._user, daemon=True) for _ in range(users or self.users)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(35)
        self._threads = []

    def close(self) -> None:
        self.stop()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
