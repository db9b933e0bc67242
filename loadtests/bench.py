#!/usr/bin/env python3
"""Benchmark of the load generator itself (not a test): accuracy and capacity on this machine.

Accuracy: at 1, 16 and 64 concurrent streams against the simulator (TTFT 100 ms, ITL 20 ms, no jitter),
the client's TTFT and ITL p50 next to the configured values and to the simulator's own histograms
(vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds; /metrics scraped before and after,
quantiles from the bucket increase as Prometheus' histogram_quantile computes them, means from
_sum/_count). Pass: client p50 within 5 % (or 5 ms) of the configured value and of the server mean,
and inside the server's p50 bucket (the histogram cannot resolve finer than its buckets).

Capacity: open-loop streamed requests at rising rates until the generator's CPU saturates (INVALID)
or the numbers drift (send lag p99 > --max-lag-ms, default 50 ms, achieved rate < 95 % of target, TTFT p50 off by > 10 %).

Tables are printed and written to loadtests/results/bench-<time>.md (copy the one you trust into
loadtests/results/BENCHMARK.md).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import simctl  # noqa: E402 (after the sys.path setup)

TTFT_MS, ITL_MS, OUT_TOKENS = 100.0, 20.0, 16
TTFT_H, ITL_H = "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"


def run_load(base: str, out: Path, *args: str) -> dict:
    cmd = [sys.executable, str(HERE / "run.py"), "--host", base, "--profile", "fixed-chat", "--no-slo",
           "--out", str(out), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode not in (0, 3):
        raise RuntimeError(f"run.py failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return json.loads((out / "summary.json").read_text())


def close(a: float, b: float, rel: float = 0.05, abs_ms: float = 5.0) -> bool:
    return abs(a - b) <= max(rel * b, abs_ms)


def bucket_of(buckets: list[tuple[float, float]], ms: float) -> tuple[float, float]:
    lo = 0.0
    for le, _ in buckets:
        if ms / 1000 <= le:
            return lo * 1000, le * 1000
        lo = le
    return lo * 1000, math.inf


def accuracy(sim: simctl.Sim, outdir: Path, streams: list[int], duration: float) -> list[str]:
    rows = [("| streams | metric | configured | client p50 (n) | client mean | server mean | server p50 "
            "(histogram, bucket) | p50 vs configured | p50 vs server | verdict |"),
            "|---|---|---|---|---|---|---|---|---|---|"]
    for c in streams:
        before = simctl.scrape_histograms(sim.base_url, (TTFT_H, ITL_H))
        s = run_load(sim.base_url, outdir / f"accuracy-{c}", "--users", str(c), "--duration", str(duration),
                     "--no-plots")
        after = simctl.scrape_histograms(sim.base_url, (TTFT_H, ITL_H))
        for key, name, conf in (("ttft", TTFT_H, TTFT_MS), ("itl", ITL_H, ITL_MS)):
            cl = s["latency_ms"][key]
            b, a = before[name], after[name]
            n_srv = a.count - b.count
            srv_mean = (a.sum - b.sum) / n_srv * 1000 if n_srv else float("nan")
            srv_p50 = simctl.histogram_quantile(0.5, b.buckets, a.buckets) * 1000
            lo, hi = bucket_of(a.buckets, srv_p50)
            in_bucket = lo < cl["p50"] <= hi
            ok_conf, ok_srv = close(cl["p50"], conf), close(cl["p50"], srv_mean)
            verdict = "ok" if ok_conf and ok_srv and in_bucket and s["run"]["valid"] else "DRIFT"
            rows.append(f"| {c} | {key.upper()} | {conf:g} ms | {cl['p50']:.1f} ({cl['n']}) | {cl['mean']:.1f} | "
                        f"{srv_mean:.1f} (n={n_srv:.0f}) | {srv_p50:.1f} ({lo:g}, {hi:g}] | "
                        f"{cl['p50'] - conf:+.1f} ms | {cl['p50'] - srv_mean:+.1f} ms | {verdict} |")
        print(rows[-2], rows[-1], sep="\n", flush=True)
    return rows


def capacity(sim: simctl.Sim, outdir: Path, rates: list[float], duration: float, max_lag_ms: float) -> list[str]:
    rows = [("| target req/s | achieved req/s | tokens/s | generator CPU max / mean | send lag p99 | "
            "TTFT p50 | ITL p50 | scheduled p99 | errors | verdict |"),
            "|---|---|---|---|---|---|---|---|---|---|"]
    for rate in rates:
        pool = math.ceil(rate * (TTFT_MS + OUT_TOKENS * ITL_MS) / 1000 * 2) + 8
        s = run_load(sim.base_url, outdir / f"capacity-{rate:g}", "--shape", "rate", "--rate", str(rate),
                     "--users", str(pool), "--duration", str(duration), "--no-plots")
        lat, cpu = s["latency_ms"], s["run"]["cpu_percent"]
        achieved = s["requests"]["ok"] / duration
        why = []
        if not s["run"]["valid"]:
            why.append("INVALID: " + s["run"]["invalid_reason"])
        if s["send_lag_ms"].get("p99", math.inf) > max_lag_ms:
            why.append(f"send lag p99 > {max_lag_ms:g} ms")
        if achieved < 0.95 * rate:
            why.append("rate short")
        if not lat["ttft"]["n"] or not close(lat["ttft"]["p50"], TTFT_MS, rel=0.10):
            why.append("TTFT drift")
        rows.append(f"| {rate:g} | {achieved:.1f} | {s['rates']['output_throughput']:.0f} | "
                    f"{cpu['max']:.0f}% / {cpu['mean']:.0f}% | {s['send_lag_ms'].get('p99', float('nan')):.1f} ms | "
                    f"{lat['ttft'].get('p50', float('nan')):.1f} | {lat['itl'].get('p50', float('nan')):.1f} | "
                    f"{lat['scheduled'].get('p99', float('nan')):.0f} | {s['rates']['error_rate']:.1%} | "
                    f"{'; '.join(why) or 'sustained'} |")
        print(rows[-1], flush=True)
        if why:
            break
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", default="1,16,64", help="concurrencies for the accuracy table")
    p.add_argument("--rates", default="25,50,100,150,200,250,300,400", help="request rates for the capacity ladder")
    p.add_argument("--duration", type=float, default=15, help="seconds per point")
    p.add_argument("--max-lag-ms", type=float, default=50, help="capacity: send lag p99 that counts as drift")
    p.add_argument("--skip", choices=["accuracy", "capacity"], action="append", default=[])
    a = p.parse_args()
    outdir = HERE / "results" / time.strftime("bench-%Y%m%d-%H%M%S")
    outdir.mkdir(parents=True)
    sim = simctl.start_process(simctl.sim_args(TTFT_MS, ITL_MS, max_num_seqs=1024))
    lines = [f"# Load generator benchmark ({time.strftime('%Y-%m-%d %H:%M')})", "",
             (f"Simulator: {' '.join(sim.args)} (a local process). Profile fixed-chat: 64 prompt tokens, "
             f"{OUT_TOKENS} output tokens, streamed chat. {a.duration:g} s per point."), ""]
    try:
        if "accuracy" not in a.skip:
            lines += ["## Accuracy (closed loop)", ""]
            lines += accuracy(sim, outdir, [int(x) for x in a.streams.split(",")], a.duration) + [""]
        if "capacity" not in a.skip:
            lines += ["## Capacity (open loop, one Locust process)", ""]
            lines += capacity(sim, outdir, [float(x) for x in a.rates.split(",")], a.duration, a.max_lag_ms) + [""]
    finally:
        sim.stop()
    text = "\n".join(lines)
    (outdir.parent / f"{outdir.name}.md").write_text(text + "\n")
    print(f"\n{text}\n\nwritten to {outdir.parent / (outdir.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
