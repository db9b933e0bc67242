"""Start llm-stack's vLLM simulator (tools/vllm-sim) for the load tests and the benchmark, and read its
/metrics histograms. A container through testcontainers when a Docker engine answers (the image is
built locally from the simulator binary by scripts/sim-image.sh), else a local process. Both listen
on 127.0.0.1 only. No locust import here.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("LLM_STACK_CACHE", Path.home() / ".cache" / "llm-stack"))
HOST = "127.0.0.1"


@dataclass
class Sim:
    base_url: str
    how: str                      # "process" or "container"
    stop: Callable[[], None]
    log: Path | None = None
    args: list[str] = field(default_factory=list)


def sim_binary() -> str:
    """$LLM_STACK_VLLM_SIM (another build), else the pinned build from scripts/bootstrap.sh --only sim."""
    path = os.environ.get("LLM_STACK_VLLM_SIM") or str(CACHE / "bin" / "vllm-sim")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"vllm-sim not found at {path}; run scripts/bootstrap.sh --only sim")
    return path


def sim_args(ttft_ms: float, itl_ms: float, *, ttft_sd_ms: float = 0, itl_sd_ms: float = 0,
             max_num_seqs: int = 256, failure_rate: float = 0, seed: int = 1, served: str = "demo") -> list[str]:
    args = ["serve", "llm-stack/sim-model", "--served-model-name", served,
            f"--time-to-first-token={ttft_ms:g}", f"--inter-token-latency={itl_ms:g}",
            f"--time-to-first-token-std-dev={ttft_sd_ms:g}", f"--inter-token-latency-std-dev={itl_sd_ms:g}",
            f"--max-num-seqs={max_num_seqs}", f"--seed={seed}"]
    if failure_rate:
        args.append(f"--failure-injection-rate={failure_rate:g}")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_healthy(base_url: str, timeout: float, alive: Callable[[], bool], log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(base_url):
            return
        if not alive():
            break
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"the simulator at {base_url} did not become healthy within {timeout:g} s\n{tail}")


def start_process(args: list[str], port: int | None = None) -> Sim:
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="vllm-sim-", suffix=".log")[1])
    with open(log, "w") as f:
        proc = subprocess.Popen([sim_binary(), *args, "--host", HOST, "--port", str(port)],
                                stdout=f, stderr=subprocess.STDOUT)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    base = f"http://{HOST}:{port}"
    try:
        wait_healthy(base, 15, lambda: proc.poll() is None, log)
    except Exception:
        stop()
        raise
    return Sim(base, "process", stop, log, args)


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers, and if not, why (the reason goes into the test output)."""
    try:
        import docker
        docker.from_env(timeout=3).ping()
        return True, ""
    except Exception as e:  # noqa: BLE001 - any failure means: no usable engine
        return False, f"{type(e).__name__}: {str(e)[:200]}"


def start_container(args: list[str]) -> Sim:
    from testcontainers.core.container import DockerContainer

    image = image_name()
    subprocess.run([str(ROOT / "scripts" / "sim-image.sh")], check=True)
    # Ryuk, testcontainers' reaper, is an image from a registry this machine cannot reach; stop() cleans up.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    c = DockerContainer(image).with_command([*args, "--host", "0.0.0.0", "--port", "8000"]).with_exposed_ports(8000)
    c.start()
    base = f"http://{HOST}:{c.get_exposed_port(8000)}"
    try:
        wait_healthy(base, 30, lambda: True, None)
    except Exception:
        c.stop()
        raise
    return Sim(base, "container", c.stop, None, args)


def image_name() -> str:
    for line in (ROOT / "versions.env").read_text().splitlines():
        if line.startswith("VLLM_SIM_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("versions.env has no VLLM_SIM_IMAGE")


def start(args: list[str], *, container: bool | None = None) -> Sim:
    """container=None: a container when Docker works, else a process; True or False forces one."""
    if container is None:
        container = docker_available()[0]
    return start_container(args) if container else start_process(args)


# --- /metrics -------------------------------------------------------------------------------------

_BUCKET = re.compile(r'^(?P<name>[a-z_:]+)_bucket\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$')
_SUMCOUNT = re.compile(r'^(?P<name>[a-z_:]+)_(?P<kind>sum|count)(\{[^}]*\})?\s+(?P<value>\S+)$')
_LE = re.compile(r'le="([^"]+)"')


@dataclass
class Histogram:
    buckets: list[tuple[float, float]]     # cumulative (le, count), summed over label sets
    sum: float
    count: float


def scrape_histograms(base_url: str, names: tuple[str, ...]) -> dict[str, Histogram]:
    with urllib.request.urlopen(base_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    buckets: dict[str, dict[float, float]] = {n: {} for n in names}
    totals: dict[str, dict[str, float]] = {n: {"sum": 0.0, "count": 0.0} for n in names}
    for line in text.splitlines():
        if m := _BUCKET.match(line):
            if m["name"] in buckets:
                le = float(_LE.search(m["labels"])[1].replace("+Inf", "inf"))
                buckets[m["name"]][le] = buckets[m["name"]].get(le, 0.0) + float(m["value"])
        elif (m := _SUMCOUNT.match(line)) and m["name"] in totals:
            totals[m["name"]][m["kind"]] += float(m["value"])
    return {n: Histogram(sorted(buckets[n].items()), totals[n]["sum"], totals[n]["count"]) for n in names}


def histogram_quantile(q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over the bucket increase between two scrapes: linear within the
    bucket that holds the rank, the first bucket starting at 0. NaN when nothing was observed."""
    prev = dict(before)
    buckets = [(le, c - prev.get(le, 0.0)) for le, c in after]
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    lo_le, lo_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return lo_le
            return lo_le + (le - lo_le) * ((rank - lo_c) / (c - lo_c) if c > lo_c else 0.0)
        lo_le, lo_c = le, c
    return lo_le
