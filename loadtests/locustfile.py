"""Locust users that stream from an OpenAI-compatible server (vLLM) and time every request the way
vLLM's benchmark does. Run it through loadtests/run.py, which writes the run configuration to a JSON
file named by $LLM_LOAD_CONFIG and analyses the samples afterwards. Plain `locust -f` works too
(profile short-chat, the model from /v1/models, -u/-r/-t as usual).

Per request one JSON line goes to the samples file; nothing is aggregated here. Per SSE event the work
is one perf_counter() call, one split and one json.loads.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
import urllib.request
from pathlib import Path

import gevent
import psutil
from locust import LoadTestShape, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

sys.path.insert(0, str(Path(__file__).resolve().parent))
import config

CFG: dict = json.loads(Path(os.environ["LLM_LOAD_CONFIG"]).read_text()) if os.environ.get("LLM_LOAD_CONFIG") else {}
SHAPE: dict = CFG.get("shape", {})
KINDS = config.profile(Path(CFG.get("profiles_file", config.HERE / "profiles.yaml")), CFG.get("profile", "short-chat"))
WEIGHTS = list(itertools.accumulate(k.weight for k in KINDS))
RNG = random.Random(CFG.get("seed", 1))

# One block of random text; each prompt is a slice of it at a random offset, ~4 characters per token,
# so prompts differ (no prefix-cache shortcut on a real server) without per-request generation work.
_SYL = ["ka", "lo", "ve", "nu", "pi", "ra", "so", "te", "mi", "da", "go", "qu", "sh", "ze"]
_longest = max(k.prompt_tokens[1] for k in KINDS)
TEXT = "".join(RNG.choice(_SYL) + RNG.choice("aeiou") + " " for _ in range(_longest * 2 + 1024))

SAMPLES = open(CFG.get("samples", "loadtest-samples.jsonl"), "w", buffering=1 << 16)  # noqa: SIM115
META: dict = {"cpu": [], "locust_cpu_warning": False, "model": CFG.get("model") or None}
STATE: dict = {"t0_perf": None, "t0_wall": None}
# Open-loop schedule (shape kind "rate"): the k-th request is due at offsets[k] seconds after t0.
_SCHEDULE = itertools.count()
_OFFSETS: list[float] = []


def _offset(k: int) -> float:
    rate = float(SHAPE["rate"])
    if SHAPE.get("arrival", "uniform") == "uniform":
        return k / rate
    while len(_OFFSETS) <= k:  # Poisson arrivals: exponential gaps from a seeded generator
        _OFFSETS.append((_OFFSETS[-1] if _OFFSETS else 0.0) + RNG.expovariate(rate))
    return _OFFSETS[k]


def _model(host: str) -> str:
    with urllib.request.urlopen(host.rstrip("/") + "/v1/models", timeout=10) as r:
        data = json.load(r)["data"]
    if not data:
        raise RuntimeError(f"{host}/v1/models lists no model; pass --model")
    return data[0]["id"]


@events.test_start.add_listener
def _start(environment, **_kw):
    if not META["model"]:
        META["model"] = _model(environment.host)
    STATE["t0_perf"], STATE["t0_wall"] = time.perf_counter() + 0.2, time.time() + 0.2
    gevent.spawn(_cpu_sampler)


def _cpu_sampler() -> None:
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        gevent.sleep(1.0)
        META["cpu"].append([round(time.time(), 3), proc.cpu_percent(None)])


@events.cpu_warning.add_listener
def _cpu_warning(**_kw):
    META["locust_cpu_warning"] = True


@events.quitting.add_listener
def _quit(environment, **_kw):
    SAMPLES.flush()
    if environment.runner is not None and environment.runner.cpu_warning_emitted:
        META["locust_cpu_warning"] = True
    if CFG.get("meta"):
        Path(CFG["meta"]).write_text(json.dumps(META))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class LLMUser(FastHttpUser):
    """One conversation at a time (closed loop), or, with shape kind "rate", a slot of the open-loop pool
    that takes the next due send time from the shared schedule."""

    wait_time = constant(float(CFG.get("think_time_s", 0)))
    network_timeout = float(CFG.get("timeout_s", 300))
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if CFG.get("api_key"):
            self.headers["Authorization"] = f"Bearer {CFG['api_key']}"

    @task
    def generate(self) -> None:
        intended = None
        if SHAPE.get("kind") == "rate":
            offset = _offset(next(_SCHEDULE))
            if offset >= float(SHAPE["duration"]):
                # The schedule is over: idle until the shape ends the run (a stopped user could be respawned).
                gevent.sleep(max(0.0, STATE["t0_perf"] + float(SHAPE["duration"]) - time.perf_counter()) + 1)
                return
            intended = STATE["t0_perf"] + offset
            delay = intended - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
        kind = KINDS[next(i for i, w in enumerate(WEIGHTS) if RNG.random() * WEIGHTS[-1] < w)]
        self.request(kind, intended)

    def request(self, kind: config.RequestKind, intended: float | None) -> None:
        n_in = RNG.randint(*kind.prompt_tokens)
        n_out = RNG.randint(*kind.output_tokens)
        start = RNG.randrange(0, len(TEXT) - 4 * n_in)
        text = TEXT[start:start + 4 * n_in]
        body: dict = {"model": META["model"], "max_tokens": n_out, "stream": kind.stream}
        if kind.ignore_eos:
            body["ignore_eos"] = True
        if kind.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body["prompt"] = text
        if kind.stream:
            body["stream_options"] = {"include_usage": True}
        rec = {"start": time.time(), "endpoint": kind.endpoint, "stream": kind.stream, "max_tokens": n_out,
               "status": 0, "error": None, "prompt_tokens": None, "completion_tokens": None,
               "ttft": None, "ttfc": None, "e2e": None, "itl": [], "intended": None, "sched": None,
               "send_lag": None}
        t0 = time.perf_counter()
        if intended is not None:
            rec["intended"] = round(STATE["t0_wall"] + (intended - STATE["t0_perf"]), 6)
            rec["send_lag"] = _ms(t0 - intended)
        name = f"{kind.path}{' [stream]' if kind.stream else ''}"
        with self.client.post(kind.path, data=json.dumps(body), headers=self.headers, stream=kind.stream,
                              catch_response=True, name=name) as resp:
            rec["status"] = resp.status_code
            if resp.status_code != 200:
                rec["error"] = f"http_{resp.status_code}"
                end = time.perf_counter()
            elif kind.stream:
                end = self._read_stream(resp, t0, rec)
            else:
                end = self._read_body(resp, t0, rec)
            if rec["error"]:
                resp.failure(rec["error"])
            else:
                resp.success()
        rec["end"] = time.time()
        if rec["e2e"] is None:
            rec["e2e_failed"] = _ms(end - t0)
        if intended is not None:
            rec["sched"] = _ms(end - intended)
        SAMPLES.write(json.dumps(rec, separators=(",", ":")) + "\n")
        if not rec["error"]:
            fire = self.environment.events.request.fire
            for key, label in (("ttft", "TTFT"), ("e2e", "E2E"), ("tpot", "TPOT"), ("sched", "scheduled")):
                if rec.get(key) is not None:
                    fire(request_type="LLM", name=label, response_time=rec[key], response_length=0,
                         exception=None, context={})

    @staticmethod
    def _read_stream(resp, t0: float, rec: dict) -> float:
        # geventhttpclient's readline returns each SSE event as soon as its bytes are in (FastResponse's
        # iter_content waits for a full chunk_size). _response is the library's raw response object.
        raw = resp._response
        first = first_content = prev = None
        itl = rec["itl"]
        done = False
        try:
            while True:
                event = raw.readline(b"\n\n")
                now = time.perf_counter()
                if not event:
                    break
                for line in event.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    obj = json.loads(data)
                    choices = obj.get("choices")
                    if choices:
                        if first is None:
                            first = now
                        c = choices[0]
                        if c.get("text") or (c.get("delta") or {}).get("content"):
                            if first_content is None:
                                first_content = now
                            else:
                                itl.append(round((now - prev) * 1000, 3))
                            prev = now
                    elif obj.get("usage"):
                        rec["prompt_tokens"] = obj["usage"].get("prompt_tokens")
                        rec["completion_tokens"] = obj["usage"].get("completion_tokens")
                    if "error" in obj:
                        rec["error"] = "stream_error"
                if done:
                    break
        except Exception as e:  # noqa: BLE001 - a cut connection or a bad event is a failed request
            rec["error"] = f"stream_cut: {type(e).__name__}"
            return time.perf_counter()
        end = time.perf_counter()
        if rec["error"]:
            return end
        if first_content is None:
            rec["error"] = "no_token"
        elif not done:
            rec["error"] = "stream_cut: no [DONE]"
        else:
            rec["ttft"] = _ms(first - t0)
            rec["ttfc"] = _ms(first_content - t0)
            rec["e2e"] = _ms(prev - t0)
            toks = rec["completion_tokens"]
            if toks is None:  # no usage event: count token-bearing events instead, and say so
                rec["completion_tokens"] = toks = len(itl) + 1
                rec["tokens_from_events"] = True
            if toks > 1:
                rec["tpot"] = round((rec["e2e"] - rec["ttft"]) / (toks - 1), 3)
        return end

    @staticmethod
    def _read_body(resp, t0: float, rec: dict) -> float:
        try:
            obj = json.loads(resp.content)
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"bad_body: {type(e).__name__}"
            return time.perf_counter()
        end = time.perf_counter()
        choices = obj.get("choices") or []
        c = choices[0] if choices else {}
        if not (c.get("text") or (c.get("message") or {}).get("content")):
            rec["error"] = "no_token"
            return end
        usage = obj.get("usage") or {}
        rec["prompt_tokens"] = usage.get("prompt_tokens")
        rec["completion_tokens"] = usage.get("completion_tokens")
        rec["e2e"] = _ms(end - t0)
        return end


if SHAPE:
    class RunShape(LoadTestShape):
        """The run's load over time, from the configuration's shape block (see loadtests/README.md)."""

        def tick(self):
            t = self.get_run_time()
            s = SHAPE
            if t >= float(s["duration"]):
                return None
            kind = s["kind"]
            if kind == "fixed":
                return int(s["users"]), float(s.get("spawn_rate", s["users"]))
            if kind == "step":
                users = int(s["users"]) + int(s["step_users"]) * int(t // float(s["step_seconds"]))
                return users, float(s.get("spawn_rate", max(1, int(s["step_users"]))))
            if kind == "spike":
                at, length = float(s["spike_at"]), float(s["spike_seconds"])
                users = int(s["spike_users"]) if at <= t < at + length else int(s["users"])
                return users, float(max(int(s["spike_users"]), 1))
            if kind == "rate":
                # The pool is spawned at once; the schedule (not the users) sets the request rate.
                return int(s["users"]), float(s["users"])
            raise ValueError(f"shape.kind: unknown {kind!r}")
