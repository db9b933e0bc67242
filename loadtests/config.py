"""Profiles and SLO files: loading and validation. Errors name the offending value's path.

Imported by the locustfile (inside the Locust process) and by run.py; it must not import locust.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
LATENCY_METRICS = ("ttft", "ttfc", "itl", "tpot", "e2e", "scheduled")
RATE_METRICS = ("error_rate", "request_throughput", "output_throughput", "total_token_throughput", "goodput")
STATS = ("p50", "p90", "p95", "p99", "mean", "max")
GOODPUT_KEYS = {"ttft_ms": "ttft", "tpot_ms": "tpot", "e2e_ms": "e2e"}


class ConfigError(ValueError):
    """A profile or SLO file that does not follow its schema; the message names the value's path."""


@dataclass(frozen=True)
class RequestKind:
    weight: float
    endpoint: str           # "chat" | "completions"
    stream: bool
    prompt_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    ignore_eos: bool = True

    @property
    def path(self) -> str:
        return ENDPOINTS[self.endpoint]


@dataclass(frozen=True)
class Gate:
    name: str
    metric: str
    stat: str | None
    bound: float
    upper: bool             # True: value <= bound; False: value >= bound
    min_samples: int = 1

    def describe(self) -> str:
        what = f"{self.metric} {self.stat}" if self.stat else self.metric
        return f"{what} {'<=' if self.upper else '>='} {self.bound:g}{' ms' if self.metric in LATENCY_METRICS else ''}"


@dataclass(frozen=True)
class Slo:
    gates: tuple[Gate, ...]
    goodput: dict[str, float]   # sample key ("ttft", "tpot", "e2e") -> bound in ms


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def _mapping(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: want a mapping, got {type(v).__name__} {v!r}")
    return v


def _closed(v: dict, where: str, allowed: set[str]) -> None:
    extra = sorted(set(v) - allowed)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _number(v: Any, where: str, *, minimum: float | None = None, integer: bool = False) -> float:
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        raise ConfigError(f"{where}: want {'an integer' if integer else 'a number'}, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"{where}: must be >= {minimum:g}, got {v!r}")
    return v


def _range(v: Any, where: str) -> tuple[int, int]:
    v = _mapping(v, where)
    _closed(v, where, {"min", "max"})
    for k in ("min", "max"):
        if k not in v:
            raise ConfigError(f"{where}.{k}: required")
    lo = int(_number(v["min"], f"{where}.min", minimum=1, integer=True))
    hi = int(_number(v["max"], f"{where}.max", minimum=1, integer=True))
    if hi < lo:
        raise ConfigError(f"{where}.max: {hi} is below min {lo}")
    return lo, hi


def load_profiles(path: Path) -> dict[str, tuple[RequestKind, ...]]:
    doc = _mapping(_load_yaml(path), str(path))
    _closed(doc, "", {"profiles"})
    profiles = _mapping(doc.get("profiles"), "profiles")
    out: dict[str, tuple[RequestKind, ...]] = {}
    for name, prof in profiles.items():
        where = f"profiles.{name}"
        prof = _mapping(prof, where)
        _closed(prof, where, {"description", "mix"})
        mix = prof.get("mix")
        if not isinstance(mix, list) or not mix:
            raise ConfigError(f"{where}.mix: want a non-empty list, got {mix!r}")
        kinds = []
        for i, k in enumerate(mix):
            kw = f"{where}.mix[{i}]"
            k = _mapping(k, kw)
            _closed(k, kw, {"weight", "endpoint", "stream", "prompt_tokens", "output_tokens", "ignore_eos"})
            if k.get("endpoint") not in ENDPOINTS:
                raise ConfigError(f"{kw}.endpoint: want one of {', '.join(ENDPOINTS)}, got {k.get('endpoint')!r}")
            for b in ("stream", "ignore_eos"):
                if b in k and not isinstance(k[b], bool):
                    raise ConfigError(f"{kw}.{b}: want true or false, got {k[b]!r}")
            weight = _number(k.get("weight", 1), f"{kw}.weight", minimum=0)
            kinds.append(RequestKind(weight=float(weight), endpoint=k["endpoint"], stream=k.get("stream", True),
                                     prompt_tokens=_range(k.get("prompt_tokens"), f"{kw}.prompt_tokens"),
                                     output_tokens=_range(k.get("output_tokens"), f"{kw}.output_tokens"),
                                     ignore_eos=k.get("ignore_eos", True)))
        if sum(k.weight for k in kinds) <= 0:
            raise ConfigError(f"{where}.mix: the weights add up to 0")
        out[str(name)] = tuple(kinds)
    return out


def profile(path: Path, name: str) -> tuple[RequestKind, ...]:
    profiles = load_profiles(path)
    if name not in profiles:
        raise ConfigError(f"profiles.{name}: no such profile in {path} (have: {', '.join(profiles)})")
    return profiles[name]


def load_slo(path: Path) -> Slo:
    doc = _mapping(_load_yaml(path), str(path))
    _closed(doc, "", {"gates", "goodput"})
    goodput: dict[str, float] = {}
    gp = _mapping(doc.get("goodput") or {}, "goodput")
    _closed(gp, "goodput", set(GOODPUT_KEYS))
    for k, v in gp.items():
        goodput[GOODPUT_KEYS[k]] = float(_number(v, f"goodput.{k}", minimum=0))
    gates_doc = doc.get("gates")
    if not isinstance(gates_doc, list) or not gates_doc:
        raise ConfigError(f"gates: want a non-empty list, got {gates_doc!r}")
    gates, names = [], set()
    for i, g in enumerate(gates_doc):
        where = f"gates[{i}]"
        g = _mapping(g, where)
        _closed(g, where, {"name", "metric", "stat", "max", "min", "min_samples"})
        name = g.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.name: want a non-empty string, got {name!r}")
        if name in names:
            raise ConfigError(f"{where}.name: {name!r} is used twice")
        names.add(name)
        metric = g.get("metric")
        if metric not in LATENCY_METRICS + RATE_METRICS:
            raise ConfigError(f"{where}.metric: want one of {', '.join(LATENCY_METRICS + RATE_METRICS)}, "
                              f"got {metric!r}")
        stat = g.get("stat")
        if metric in LATENCY_METRICS and stat not in STATS:
            raise ConfigError(f"{where}.stat: want one of {', '.join(STATS)} for {metric}, got {stat!r}")
        if metric in RATE_METRICS and stat is not None:
            raise ConfigError(f"{where}.stat: {metric} is one number per run; remove stat (got {stat!r})")
        if ("max" in g) == ("min" in g):
            raise ConfigError(f"{where}: give exactly one of max or min")
        key = "max" if "max" in g else "min"
        if metric == "goodput" and not goodput:
            raise ConfigError(f"{where}.metric: goodput needs a goodput: block with per-request bounds")
        gates.append(Gate(name=name, metric=metric, stat=stat,
                          bound=float(_number(g[key], f"{where}.{key}", minimum=0)), upper=key == "max",
                          min_samples=int(_number(g.get("min_samples", 1), f"{where}.min_samples", minimum=0,
                                                  integer=True))))
    return Slo(gates=tuple(gates), goodput=goodput)
