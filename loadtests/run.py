#!/usr/bin/env python3
"""Run a headless Locust load test against an OpenAI-compatible server, then judge it.

  loadtests/run.py --host http://127.0.0.1:8000 --profile short-chat --users 8 --duration 60
  loadtests/run.py --shape rate --rate 20 --duration 60            # open loop, scheduled latency
  loadtests/run.py --shape step --users 4 --step-users 4 --step-seconds 20 --duration 80
  loadtests/run.py --shape spike --users 4 --spike-users 32 --spike-at 20 --spike-seconds 10 --duration 60

Locust runs as a subprocess (it monkey-patches the process it is imported into). Outputs in --out:
locust_stats.csv (and Locust's other CSVs), locust.html, samples.jsonl (one line per request),
summary.json, report.txt, latency-over-time.png, latency-cdf.png, locust.log.
Exit status: 0 every SLO passed; 1 an SLO failed; 2 bad arguments or configuration, or the target is
unreachable; 3 INVALID (the load generator saturated its CPU, or nothing completed); 4 Locust failed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import analysis  # noqa: E402 (after the sys.path setup)
import config  # noqa: E402 (after the sys.path setup)

EXIT = {"PASS": 0, "FAIL": 1, "INVALID": 3}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="http://127.0.0.1:8000", help="base URL of the server (default %(default)s)")
    p.add_argument("--model", help="model name to send; default: the first entry of HOST/v1/models")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"), help="bearer token ($OPENAI_API_KEY)")
    p.add_argument("--profile", default="short-chat", help="profile name in --profiles (default %(default)s)")
    p.add_argument("--profiles", type=Path, default=HERE / "profiles.yaml")
    p.add_argument("--slo", type=Path, default=HERE / "slo.yaml", help="SLO gates (default %(default)s)")
    p.add_argument("--no-slo", action="store_true", help="report only, gate nothing")
    p.add_argument("--shape", choices=["fixed", "step", "spike", "rate"], default="fixed")
    p.add_argument("--users", type=int, help="concurrent users (fixed), first step (step), base (spike), "
                   "open-loop pool size (rate; default rate x 5 s + 8)")
    p.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    p.add_argument("--duration", type=float, default=30, help="seconds of load (default %(default)s)")
    p.add_argument("--step-users", type=int, default=4, help="step: users added per step")
    p.add_argument("--step-seconds", type=float, default=10, help="step: seconds per step")
    p.add_argument("--spike-users", type=int, help="spike: users during the spike")
    p.add_argument("--spike-at", type=float, help="spike: start, seconds into the run")
    p.add_argument("--spike-seconds", type=float, default=10, help="spike: length")
    p.add_argument("--rate", type=float, help="rate: requests per second to send, whatever the latency")
    p.add_argument("--arrival", choices=["uniform", "poisson"], default="uniform", help="rate: gaps between sends")
    p.add_argument("--think-time", type=float, default=0, help="closed loop: seconds between a user's requests")
    p.add_argument("--timeout", type=float, default=300, help="seconds before a request counts as failed")
    p.add_argument("--stop-timeout", type=float, default=30, help="seconds in-flight requests get to finish")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, help="output directory (default loadtests/results/run-<time>)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--title", default="", help="title for the plots")
    a = p.parse_args(argv)
    if a.users is None:
        a.users = math.ceil((a.rate or 0) * 5) + 8 if a.shape == "rate" else 8
    problems = []
    if a.users < 1:
        problems.append(f"--users: must be >= 1, got {a.users}")
    if a.duration <= 0:
        problems.append(f"--duration: must be > 0, got {a.duration}")
    if a.shape == "rate" and not (a.rate and a.rate > 0):
        problems.append(f"--rate: --shape rate needs a rate > 0 requests/s, got {a.rate}")
    if a.shape == "spike":
        if not a.spike_users or a.spike_users < 1:
            problems.append(f"--spike-users: --shape spike needs it >= 1, got {a.spike_users}")
        if a.spike_at is None or not 0 <= a.spike_at < a.duration:
            problems.append(f"--spike-at: must be within [0, --duration), got {a.spike_at}")
    if a.shape == "step" and (a.step_users < 1 or a.step_seconds <= 0):
        problems.append(f"--step-users/--step-seconds: want >= 1 and > 0, got {a.step_users}, {a.step_seconds}")
    if problems:
        p.error("; ".join(problems))
    return a


def shape(a: argparse.Namespace) -> dict:
    s = {"kind": a.shape, "users": a.users, "duration": a.duration}
    if a.spawn_rate:
        s["spawn_rate"] = a.spawn_rate
    if a.shape == "step":
        s.update(step_users=a.step_users, step_seconds=a.step_seconds)
    elif a.shape == "spike":
        s.update(spike_users=a.spike_users, spike_at=a.spike_at, spike_seconds=a.spike_seconds)
    elif a.shape == "rate":
        s.update(rate=a.rate, arrival=a.arrival)
    return s


def first_model(host: str, api_key: str | None) -> str:
    req = urllib.request.Request(host.rstrip("/") + "/v1/models")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(req, timeout=10) as r:
        data = json.load(r).get("data") or []
    if not data:
        raise RuntimeError(f"{host}/v1/models lists no model; pass --model")
    return data[0]["id"]


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        config.profile(a.profiles, a.profile)
        slo = None if a.no_slo else config.load_slo(a.slo)
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        model = a.model or first_model(a.host, a.api_key)
    except Exception as e:  # noqa: BLE001 - any failure here means the target is not usable
        print(f"error: cannot read the model list from {a.host}/v1/models ({e}); is the server up? "
              "or pass --model", file=sys.stderr)
        return 2
    out = a.out or HERE / "results" / time.strftime("run-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"profiles_file": str(a.profiles), "profile": a.profile, "model": model, "api_key": a.api_key,
           "samples": str(out / "samples.jsonl"), "meta": str(out / "meta.json"), "seed": a.seed,
           "think_time_s": a.think_time, "timeout_s": a.timeout, "shape": shape(a)}
    (out / "run-config.json").write_text(json.dumps({**cfg, "api_key": bool(a.api_key)}, indent=2))
    cfg_path = out / ".locust-config.json"
    cfg_path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--host", a.host,
           "--csv", str(out / "locust"), "--html", str(out / "locust.html"), "--stop-timeout", str(a.stop_timeout),
           "--exit-code-on-error", "0", "--only-summary"]
    print(f"locust: {a.shape} load, profile {a.profile}, model {model}, {a.duration:g} s -> {out}", flush=True)
    with open(out / "locust.log", "w") as log:
        rc = subprocess.run(cmd, env={**os.environ, "LLM_LOAD_CONFIG": str(cfg_path)}, stdout=log,
                            stderr=subprocess.STDOUT, check=False).returncode
    cfg_path.unlink(missing_ok=True)
    if rc != 0 or not (out / "meta.json").exists():
        tail = (out / "locust.log").read_text()[-3000:]
        print(f"error: locust exited with {rc}; the end of {out / 'locust.log'}:\n{tail}", file=sys.stderr)
        return 4
    samples = analysis.load_samples(out / "samples.jsonl")
    meta = json.loads((out / "meta.json").read_text())
    run = {"host": a.host, "profile": a.profile, "shape": cfg["shape"], "slo_file": None if a.no_slo else str(a.slo)}
    summary = analysis.summarize(samples, meta, slo, run)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    text = analysis.report(summary)
    (out / "report.txt").write_text(text + "\n")
    if not a.no_plots:
        analysis.plot(samples, meta, out, a.title or f"{a.profile}, {a.shape}")
    print(text)
    return EXIT[summary["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
