"""Short headless Locust runs against the simulator with known latencies.

Each proves one promise of loadtests/: the measured TTFT and ITL match what the simulator was told to
do, SLO gates pass and fail as they should and name the failing gate, injected failures count as
errors, open-loop runs expose coordinated omission, the load shapes shape the load, and every output
file is written. The module keeps under ~2 minutes on 2 cores: each run lasts 4-6 seconds.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import LOADTESTS, Run

sys.path.insert(0, str(LOADTESTS))
import analysis

pytestmark = pytest.mark.load

TTFT_MS, ITL_MS = 100, 20
LENIENT = """
gates:
  - {name: ttft-p95-lenient, metric: ttft, stat: p95, max: 1000}
  - {name: e2e-p95-lenient, metric: e2e, stat: p95, max: 5000}
  - {name: errors-lenient, metric: error_rate, max: 0.01}
"""
STRICT = """
gates:
  - {name: ttft-p50-generous, metric: ttft, stat: p50, max: 10000}
  - {name: ttft-p99-impossible, metric: ttft, stat: p99, max: 5}
"""


@pytest.fixture(scope="module")
def sim(start_sim):
    return start_sim(TTFT_MS, ITL_MS, seed=7)


@pytest.fixture(scope="module")
def lenient_run(sim, tmp_path_factory):
    """One 6 s closed-loop run at 8 streams, shared by the tests that only read its results."""
    out = tmp_path_factory.mktemp("lenient")
    (out / "slo.yaml").write_text(LENIENT)
    cmd = [sys.executable, str(LOADTESTS / "run.py"), "--host", sim.base_url, "--profile", "fixed-chat",
           "--users", "8", "--duration", "6", "--slo", str(out / "slo.yaml"), "--out", str(out / "run")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    return Run(p.returncode, p.stdout + p.stderr, out / "run")


def within(value: float, target: float, rel: float = 0.05, abs_ms: float = 5) -> bool:
    return abs(value - target) <= max(rel * target, abs_ms)


def test_lenient_slo_passes(lenient_run):
    assert lenient_run.rc == 0, lenient_run.output
    assert "verdict: PASS" in lenient_run.output
    s = lenient_run.summary
    assert s["requests"]["errors"] == 0 and s["requests"]["ok"] >= 50, s["requests"]
    assert all(g["pass"] for g in s["slo"])


def test_measured_ttft_and_itl_match_the_simulators(lenient_run):
    lat = lenient_run.summary["latency_ms"]
    assert within(lat["ttft"]["p50"], TTFT_MS), f"TTFT p50 {lat['ttft']['p50']} ms, configured {TTFT_MS} ms"
    assert within(lat["itl"]["p50"], ITL_MS, abs_ms=2), f"ITL p50 {lat['itl']['p50']} ms, configured {ITL_MS} ms"
    assert within(lat["tpot"]["p50"], ITL_MS, abs_ms=2), f"TPOT p50 {lat['tpot']['p50']} ms"
    # fixed-chat asks for 16 tokens: E2E = TTFT + 15 gaps
    assert within(lat["e2e"]["p50"], TTFT_MS + 15 * ITL_MS), f"E2E p50 {lat['e2e']['p50']} ms"
    samples = lenient_run.samples()
    assert all(r["completion_tokens"] == 16 and len(r["itl"]) == 15 for r in samples if not r["error"])


def test_percentiles_come_from_raw_samples(lenient_run):
    samples = [r for r in lenient_run.samples() if not r["error"]]
    ttft = np.array([r["ttft"] for r in samples])
    itl = np.concatenate([r["itl"] for r in samples])
    lat = lenient_run.summary["latency_ms"]
    for p in (50, 90, 95, 99):
        assert lat["ttft"][f"p{p}"] == pytest.approx(np.percentile(ttft, p, method="linear"), abs=1e-3)
        assert lat["itl"][f"p{p}"] == pytest.approx(np.percentile(itl, p, method="linear"), abs=1e-3)
    assert lat["ttft"]["n"] == len(samples) and lat["itl"]["n"] == itl.size


def test_outputs_are_written(lenient_run):
    out = lenient_run.out
    for name in ("locust_stats.csv", "locust.html", "summary.json", "samples.jsonl", "report.txt",
                 "latency-over-time.png", "latency-cdf.png"):
        assert (out / name).stat().st_size > 0, name
    for png in ("latency-over-time.png", "latency-cdf.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "locust_stats.csv") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    assert {"TTFT", "E2E", "TPOT"} <= set(rows), sorted(rows)
    # Locust's own TTFT entry is the same measurement (its median is rounded; compare loosely)
    assert within(float(rows["TTFT"]["Median Response Time"]), TTFT_MS, abs_ms=10)


def test_strict_slo_fails_and_names_the_gate(sim, run_load):
    r = run_load(sim.base_url, "--profile", "fixed-chat", "--users", "4", "--duration", "4", slo=STRICT)
    assert r.rc == 1, r.output
    assert "SLO FAIL ttft-p99-impossible" in r.output and "SLO PASS ttft-p50-generous" in r.output
    line = next(x for x in r.output.splitlines() if "ttft-p99-impossible" in x)
    assert "measured" in line and "(n=" in line, line
    assert r.summary["verdict"] == "FAIL"


def test_injected_failures_count_as_errors(start_sim, run_load):
    flaky = start_sim(TTFT_MS, ITL_MS, failure_rate=30, seed=3)
    r = run_load(flaky.base_url, "--profile", "fixed-chat", "--users", "8", "--duration", "4", slo=LENIENT)
    assert r.rc == 1, r.output
    assert "SLO FAIL errors-lenient" in r.output
    s = r.summary
    assert 0.15 <= s["rates"]["error_rate"] <= 0.45, s["requests"]
    assert set(s["requests"]["errors_by_kind"]) <= {"http_500", "http_429", "http_503"}, s["requests"]
    with open(r.out / "locust_stats.csv") as f:
        http = next(row for row in csv.DictReader(f) if row["Name"].startswith("/v1/chat/completions"))
    assert int(http["Failure Count"]) == s["requests"]["errors"]


def test_open_loop_rate_shows_coordinated_omission(sim, run_load):
    # 10 requests/s of ~400 ms each need ~4 in flight; a pool of 2 cannot keep the schedule, so sends
    # fall behind it. Closed-loop latency (e2e) stays flat; scheduled latency grows with the backlog.
    r = run_load(sim.base_url, "--profile", "fixed-chat", "--shape", "rate", "--rate", "10", "--users", "2",
                 "--duration", "5", "--no-slo")
    assert r.rc == 0, r.output
    s = r.summary
    lat, lag = s["latency_ms"], s["send_lag_ms"]
    assert lat["scheduled"]["n"] == lat["e2e"]["n"] > 0
    assert within(lat["e2e"]["p50"], TTFT_MS + 15 * ITL_MS)
    assert lag["p99"] > 1000, lag
    assert lat["scheduled"]["p99"] > lat["e2e"]["p99"] + 1000, (lat["scheduled"], lat["e2e"])


def test_open_loop_rate_keeps_its_schedule_when_the_pool_is_large_enough(sim, run_load):
    r = run_load(sim.base_url, "--profile", "fixed-chat", "--shape", "rate", "--rate", "10", "--users", "12",
                 "--duration", "4", "--no-slo", "--no-plots")
    assert r.rc == 0, r.output
    s = r.summary
    assert s["send_lag_ms"]["p99"] < 50, s["send_lag_ms"]
    assert within(s["latency_ms"]["scheduled"]["p50"], s["latency_ms"]["e2e"]["p50"])
    assert 36 <= s["requests"]["total"] <= 41, s["requests"]   # 10/s for 4 s, whatever the latency


def test_spike_shape_changes_the_user_count(sim, run_load):
    r = run_load(sim.base_url, "--profile", "fixed-chat", "--shape", "spike", "--users", "1", "--spike-users", "6",
                 "--spike-at", "2", "--spike-seconds", "2", "--duration", "6", "--no-slo", "--no-plots")
    assert r.rc == 0, r.output
    with open(r.out / "locust_stats_history.csv") as f:
        users = [int(row["User Count"]) for row in csv.DictReader(f)]
    assert max(users) == 6 and 1 in users and users.index(6) > users.index(1), users
    assert users[-1] < 6, users   # back to the base after the spike


def test_bad_profile_is_rejected_naming_the_value(sim, run_load, tmp_path):
    bad = tmp_path / "profiles.yaml"
    bad.write_text("profiles:\n  p:\n    mix:\n      - {endpoint: embeddings, prompt_tokens: {min: 1, max: 2},"
                   " output_tokens: {min: 1, max: 2}}\n")
    r = run_load(sim.base_url, "--profiles", str(bad), "--profile", "p", "--duration", "1")
    assert r.rc == 2 and "profiles.p.mix[0].endpoint" in r.output, r.output


def test_unreachable_target_is_a_clear_error(run_load):
    r = run_load("http://127.0.0.1:9", "--duration", "1")
    assert r.rc == 2 and "127.0.0.1:9/v1/models" in r.output, r.output


def test_saturated_generator_makes_the_run_invalid():
    """The verdict logic on recorded CPU samples (forcing a real saturation would take both cores)."""
    samples = [{"start": 0.0, "end": 1.0, "error": None, "stream": True, "completion_tokens": 2,
                "prompt_tokens": 1, "ttft": 1.0, "ttfc": 1.0, "tpot": 1.0, "e2e": 2.0, "itl": [1.0]}]
    slo = analysis.config.Slo(gates=(analysis.config.Gate("e", "e2e", "p95", 1e6, True),), goodput={})
    hot = {"cpu": [[0, 50.0], [1, 95.0], [2, 96.0], [3, 93.0]], "locust_cpu_warning": False}
    cool = {"cpu": [[0, 50.0], [1, 95.0], [2, 40.0], [3, 30.0]], "locust_cpu_warning": False}
    assert analysis.summarize(samples, hot, slo, {})["verdict"] == "INVALID"
    assert analysis.summarize(samples, cool, slo, {})["verdict"] == "PASS"
    assert analysis.summarize(samples, {**cool, "locust_cpu_warning": True}, slo, {})["verdict"] == "INVALID"
    assert json.dumps(analysis.summarize(samples, hot, slo, {}))  # the summary stays JSON
