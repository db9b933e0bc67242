"""The simulator behind the load tests, and a way to run loadtests/run.py as a subprocess.

Locust monkey-patches the process it is imported into (gevent), so it never runs inside pytest: every
run is `python loadtests/run.py ...` in a child process, judged by its exit status, its output and the
summary.json it writes.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOADTESTS = ROOT / "loadtests"
sys.path.insert(0, str(LOADTESTS))
import simctl  # noqa: E402 (after the sys.path setup)


@dataclass
class Run:
    rc: int
    output: str
    out: Path

    @property
    def summary(self) -> dict:
        path = self.out / "summary.json"
        assert path.exists(), f"run.py wrote no summary (exit {self.rc}):\n{self.output}"
        return json.loads(path.read_text())

    def samples(self) -> list[dict]:
        return [json.loads(line) for line in (self.out / "samples.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="session")
def start_sim() -> Iterator[Callable[..., simctl.Sim]]:
    """start_sim(ttft_ms, itl_ms, ...) -> a running simulator; all are stopped at the end of the session.
    A container when a Docker engine answers, else a real local process (this machine has no engine)."""
    started: list[simctl.Sim] = []
    docker_ok, why = simctl.docker_available()

    def start(ttft_ms: float, itl_ms: float, **kw) -> simctl.Sim:
        sim = simctl.start(simctl.sim_args(ttft_ms, itl_ms, **kw), container=docker_ok)
        started.append(sim)
        print(f"vllm-sim as a {sim.how} at {sim.base_url}" + ("" if docker_ok else f" (no Docker engine: {why})"))
        return sim

    try:
        simctl.sim_binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def run_load(tmp_path: Path) -> Callable[..., Run]:
    """run_load(host, *args, slo=yaml_text|None) runs loadtests/run.py headless and returns its result."""
    def run(host: str, *args: str, slo: str | None = None, name: str = "run") -> Run:
        out = tmp_path / name
        cmd = [sys.executable, str(LOADTESTS / "run.py"), "--host", host, "--out", str(out), *args]
        if slo is not None:
            slo_file = tmp_path / f"{name}-slo.yaml"
            slo_file.write_text(slo)
            cmd += ["--slo", str(slo_file)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        return Run(p.returncode, p.stdout + p.stderr, out)
    return run
