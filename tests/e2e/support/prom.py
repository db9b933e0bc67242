"""A local Prometheus: file-based service discovery (one file per scrape job, rewritten as pods come and
go), the chart's rules loaded, an HTTP query helper."""
from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .procs import HOST, Procs, binary, free_port, http_ok, wait_for


def relabelings(operator_style: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Prometheus Operator relabelings (camelCase) as Prometheus relabel_configs (snake_case)."""
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return [{keys.get(k, k): v for k, v in r.items()} for r in operator_style or []]


@dataclass
class Prometheus:
    procs: Procs
    workdir: Path
    scrape_interval: str = "1s"
    rule_groups: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    _targets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def add_job(self, name: str, metric_relabelings: list[dict[str, Any]] | None = None) -> None:
        """A scrape job whose targets come from set_targets (call before start)."""
        self.jobs[name] = {
            "job_name": name,
            "file_sd_configs": [{"files": [str(self._sd_file(name))], "refresh_interval": "1s"}],
            "metric_relabel_configs": relabelings(metric_relabelings),
            # Prometheus 3 refuses a scrape without a Content-Type it knows unless told what to assume.
            "fallback_scrape_protocol": "PrometheusText0.0.4",
        }
        self.set_targets(name, [])

    def _sd_file(self, job: str) -> Path:
        return self.workdir / "sd" / f"{job.replace('/', '_')}.json"

    def set_targets(self, job: str, targets: list[tuple[str, dict[str, str]]]) -> None:
        """Replace the targets of a job: (host:port, labels) pairs, labels as a ServiceMonitor would attach."""
        path = self._sd_file(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            doc = [{"targets": [addr], "labels": labels} for addr, labels in targets]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            tmp.replace(path)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules = self.workdir / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": self.rule_groups}, sort_keys=False))
        cfg = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval},
            "rule_files": [str(rules)],
            "scrape_configs": list(self.jobs.values()),
        }
        conf = self.workdir / "prometheus.yaml"
        conf.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.port = self.port or free_port()
        self.procs.start("prometheus", [
            binary("prometheus", "scripts/bootstrap.sh --only prom"), f"--config.file={conf}",
            f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address={HOST}:{self.port}",
            "--storage.tsdb.retention.time=1h", "--log.level=warn",
        ])
        wait_for(lambda: http_ok(f"{self.url}/-/ready"), 60, "Prometheus /-/ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises with Prometheus' error for a bad expression."""
        data = urllib.parse.urlencode({"query": expr}).encode()
        req = urllib.request.Request(f"{self.url}/api/v1/query", data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise ValueError(f"Prometheus rejected {expr!r}: {body.get('errorType')}: {body.get('error')}")
        res = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": res}]
        return res

    def value(self, expr: str, default: float = float("nan")) -> float:
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else default

    def series(self, match: str) -> list[dict[str, str]]:
        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/series?{q}", timeout=10) as r:
            return json.load(r)["data"]

    def wait_value(self, expr: str, pred: Any, timeout: float, what: str) -> float:
        box: dict[str, float] = {}

        def check() -> bool:
            box["v"] = self.value(expr)
            return bool(pred(box["v"]))
        wait_for(check, timeout, f"{what} ({expr}, last value {box.get('v')})", interval=0.5)
        return box["v"]
