"""From raw per-request samples (the locustfile's JSONL) to the run's numbers, SLO verdict and plots.

Percentiles come from the raw samples with numpy's linear interpolation (numpy.percentile's default,
the same as vLLM's benchmark), never from Locust's rounded histogram buckets. No locust import here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import config
import numpy as np

PCTS = (50, 90, 95, 99)
CPU_LIMIT = 90.0   # Locust warns at this CPU percentage of one core: the generator itself is the bottleneck


def load_samples(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def stats(values: list[float] | np.ndarray) -> dict[str, Any]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0}
    q = np.percentile(a, PCTS, method="linear")
    out: dict[str, Any] = {"n": int(a.size)}
    out.update({f"p{p}": round(float(v), 3) for p, v in zip(PCTS, q, strict=True)})
    out.update(mean=round(float(a.mean()), 3), min=round(float(a.min()), 3), max=round(float(a.max()), 3))
    return out


def series(samples: list[dict]) -> dict[str, list[float]]:
    """Latency samples in ms per metric, from the successful requests. ITL is pooled across requests."""
    ok = [s for s in samples if not s["error"]]
    out: dict[str, list[float]] = {m: [] for m in config.LATENCY_METRICS}
    for s in ok:
        for m in ("ttft", "ttfc", "tpot", "e2e", "sched"):
            if s.get(m) is not None:
                out["scheduled" if m == "sched" else m].append(s[m])
        out["itl"].extend(s["itl"])
    return out


def good(s: dict, bounds: dict[str, float]) -> bool:
    """vLLM's goodput rule: every bound holds. A bound on a value the request has no measure of (TTFT,
    TPOT of a non-streamed request) does not apply to it."""
    if s["error"]:
        return False
    return all(s.get(k) is None or s[k] <= b for k, b in bounds.items())


def validity(meta: dict) -> tuple[bool, str]:
    """Invalid when Locust warned about CPU or a 3-second mean of the process's CPU reached the limit."""
    cpu = [c for _, c in meta.get("cpu", [])]
    worst = max((float(np.mean(cpu[i:i + 3])) for i in range(max(0, len(cpu) - 2))), default=0.0)
    if meta.get("locust_cpu_warning"):
        return False, f"Locust reported CPU usage above {CPU_LIMIT:g}% (worst 3 s mean {worst:.0f}%)"
    if worst >= CPU_LIMIT:
        return False, f"load generator CPU reached {worst:.0f}% of a core (3 s mean; limit {CPU_LIMIT:g}%)"
    return True, ""


def summarize(samples: list[dict], meta: dict, slo: config.Slo | None, run: dict) -> dict:
    total = len(samples)
    errors = [s for s in samples if s["error"]]
    ok = [s for s in samples if not s["error"]]
    if samples:
        t_start = min(s["start"] for s in samples)
        t_end = max(s["end"] for s in samples)
        duration = max(t_end - t_start, 1e-9)
    else:
        t_start, duration = 0.0, 0.0
    out_tokens = sum(s["completion_tokens"] or 0 for s in ok)
    in_tokens = sum(s["prompt_tokens"] or 0 for s in ok)
    by_kind: dict[str, int] = {}
    for s in errors:
        k = s["error"].split(":")[0]
        by_kind[k] = by_kind.get(k, 0) + 1
    per_s = (lambda x: round(x / duration, 3)) if duration else (lambda x: 0.0)
    bounds = slo.goodput if slo else {}
    lat = series(samples)
    cpu = [c for _, c in meta.get("cpu", [])]
    valid, why = validity(meta)
    lag = [s["send_lag"] for s in samples if s.get("send_lag") is not None]
    summary = {
        "run": {**run, "model": meta.get("model"), "started": t_start, "duration_s": round(duration, 3),
                "valid": valid, "invalid_reason": why,
                "cpu_percent": {"max": max(cpu, default=0.0), "mean": round(float(np.mean(cpu)), 1) if cpu else 0.0,
                                "samples": len(cpu), "locust_warning": bool(meta.get("locust_cpu_warning"))}},
        "requests": {"total": total, "ok": len(ok), "errors": len(errors), "errors_by_kind": by_kind,
                     "streamed_ok": sum(1 for s in ok if s["stream"]),
                     "tokens_from_events": sum(1 for s in ok if s.get("tokens_from_events"))},
        "latency_ms": {m: stats(v) for m, v in lat.items()},
        "rates": {
            "error_rate": round(len(errors) / total, 6) if total else 1.0,
            "request_throughput": per_s(len(ok)),
            "output_throughput": per_s(out_tokens),
            "total_token_throughput": per_s(out_tokens + in_tokens),
            "goodput": per_s(sum(1 for s in ok if good(s, bounds))) if bounds else None,
        },
        "goodput_bounds_ms": bounds,
        "send_lag_ms": stats(lag),
    }
    summary["slo"] = evaluate(summary, slo) if slo else []
    failed = [g for g in summary["slo"] if not g["pass"]]
    summary["verdict"] = "INVALID" if not valid else ("FAIL" if failed else "PASS")
    if not samples:
        summary["verdict"] = "INVALID"
        summary["run"]["valid"] = False
        summary["run"]["invalid_reason"] = "no request completed"
    return summary


def evaluate(summary: dict, slo: config.Slo) -> list[dict]:
    results = []
    for g in slo.gates:
        if g.metric in config.LATENCY_METRICS:
            st = summary["latency_ms"][g.metric]
            n, value = st["n"], st.get(g.stat) if st["n"] else None
        else:
            n, value = summary["requests"]["total"], summary["rates"][g.metric]
        ok = value is not None and n >= max(g.min_samples, 1) and (value <= g.bound if g.upper else value >= g.bound)
        results.append({"name": g.name, "gate": g.describe(), "metric": g.metric, "stat": g.stat,
                        "bound": g.bound, "op": "<=" if g.upper else ">=", "value": value, "n": n, "pass": ok})
    return results


def report(summary: dict) -> str:
    r, q = summary["run"], summary["requests"]
    lines = [(f"model {r.get('model')}  duration {r['duration_s']:.1f} s  requests {q['total']} "
              f"(ok {q['ok']}, errors {q['errors']} {q['errors_by_kind'] or ''})"),
             f"load generator CPU: max {r['cpu_percent']['max']:.0f}%  mean {r['cpu_percent']['mean']:.0f}%",
             "", f"{'metric (ms)':<12}{'n':>8}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}{'mean':>10}"]
    for m, st in summary["latency_ms"].items():
        if st["n"]:
            lines.append(f"{m:<12}{st['n']:>8}" + "".join(f"{st[k]:>10.1f}" for k in ("p50", "p90", "p95", "p99", "mean")))
    if summary["send_lag_ms"]["n"]:
        st = summary["send_lag_ms"]
        lines.append(f"{'send lag':<12}{st['n']:>8}" + "".join(f"{st[k]:>10.1f}" for k in ("p50", "p90", "p95", "p99", "mean")))
    rt = summary["rates"]
    lines += ["", f"error rate {rt['error_rate']:.2%}  requests/s {rt['request_throughput']:.2f}  "
              f"output tok/s {rt['output_throughput']:.1f}  total tok/s {rt['total_token_throughput']:.1f}"
              + (f"  goodput req/s {rt['goodput']:.2f}" if rt["goodput"] is not None else "")]
    if summary["slo"]:
        lines.append("")
        for g in summary["slo"]:
            v = "no data" if g["value"] is None else f"{g['value']:g}"
            lines.append(f"SLO {'PASS' if g['pass'] else 'FAIL'} {g['name']}: {g['gate']}; measured {v} (n={g['n']})")
    if not r["valid"]:
        lines.append(f"INVALID: {r['invalid_reason']}")
    lines.append(f"verdict: {summary['verdict']}")
    return "\n".join(lines)


def plot(samples: list[dict], meta: dict, outdir: Path, title: str) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [s for s in samples if not s["error"]]
    if not samples:
        return []
    t0 = min(s["start"] for s in samples)
    span = max(s["end"] for s in samples) - t0
    width = max(1.0, span / 40)
    edges = np.arange(0, span + width, width)
    mids = edges[:-1] + width / 2
    paths = []

    fig, axes = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    panels = [[("ttft", "TTFT")], [("e2e", "end-to-end")]]
    if any(s.get("sched") is not None for s in ok):
        panels[1].append(("sched", "scheduled (from intended send)"))
    for ax, panel in zip(axes[:2], panels, strict=True):
        for key, label in panel:
            pts = np.array([(s["end"] - t0, s[key]) for s in ok if s.get(key) is not None])
            if not len(pts):
                continue
            idx = np.digitize(pts[:, 0], edges) - 1
            for p, style in ((50, "-"), (95, "--"), (99, ":")):
                ys = [np.percentile(pts[idx == i, 1], p) if np.any(idx == i) else np.nan for i in range(len(mids))]
                ax.plot(mids, ys, style, label=f"{label} p{p}")
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_title(f"{title}: latency percentiles per {width:.0f} s window (by completion time)")
    ax = axes[2]
    ends = np.array([s["end"] - t0 for s in ok])
    errs = np.array([s["end"] - t0 for s in samples if s["error"]])
    ax.plot(mids, np.histogram(ends, edges)[0] / width, label="completed req/s")
    if len(errs):
        ax.plot(mids, np.histogram(errs, edges)[0] / width, color="red", label="errors/s")
    ax.set_ylabel("per second")
    ax.set_xlabel("seconds since the first request")
    ax.grid(alpha=0.3)
    if meta.get("cpu"):
        ax2 = ax.twinx()
        c = np.array(meta["cpu"])
        ax2.plot(c[:, 0] - t0, c[:, 1], color="gray", alpha=0.6, label="generator CPU %")
        ax2.axhline(CPU_LIMIT, color="gray", ls=":", lw=1)
        ax2.set_ylabel("CPU %")
        ax2.set_ylim(0, 110)
        ax2.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    paths.append(outdir / "latency-over-time.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    lat = series(samples)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = [(["ttft", "ttfc"], "time to first token / content"), (["itl"], "inter-token latency (pooled)"),
              (["tpot"], "time per output token"), (["e2e", "scheduled"], "end-to-end / scheduled")]
    for ax, (keys, label) in zip(axes.flat, panels, strict=True):
        for k in keys:
            v = np.sort(np.asarray(lat[k]))
            if not v.size:
                continue
            ax.plot(v, np.arange(1, v.size + 1) / v.size, label=f"{k} (n={v.size})")
            for p in (50, 95, 99):
                x = np.percentile(v, p)
                ax.axvline(x, color="gray", ls=":", lw=0.8)
                ax.annotate(f"p{p} {x:.1f}", (x, p / 100), fontsize=7, xytext=(3, -10), textcoords="offset points")
        ax.set_title(label)
        ax.set_xlabel("ms")
        ax.set_ylabel("fraction of samples")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{title}: latency CDFs")
    fig.tight_layout()
    paths.append(outdir / "latency-cdf.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths
