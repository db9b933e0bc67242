"""Calls helm (and the other pinned chart tools) for the offline tests: cached renders, parsed manifests.

Every render is keyed by its arguments and kept for the session, so a test that asks for the `prod`
overlay again costs nothing. Tools come from $LLM_STACK_CACHE/bin, never from PATH, so the pinned
versions are the ones under test.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# LLM_STACK_CHART points the suite at another copy of the umbrella (e.g. a work in progress).
CHART = Path(os.environ.get("LLM_STACK_CHART", ROOT / "charts" / "llm-stack"))
VALUES_DIR = ROOT / "values"
DATA = Path(__file__).resolve().parent / "data"
CACHE = Path(os.environ.get("LLM_STACK_CACHE", Path.home() / ".cache" / "llm-stack"))
BIN = CACHE / "bin"

RELEASE = "llm"
NAMESPACE = "llm-test"
# Two cores: more helm processes at once only queue.
WORKERS = int(os.environ.get("LLM_STACK_TEST_WORKERS", "2"))


def versions() -> dict[str, str]:
    """versions.env as a dict (KEY=VALUE lines)."""
    out: dict[str, str] = {}
    for line in (ROOT / "versions.env").read_text().splitlines():
        m = re.match(r"^([A-Z0-9_]+)=(.*)$", line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"')
    return out


KUBE_VERSION = versions()["KUBERNETES_VERSION"]
# CRD groups the charts may gate on with .Capabilities.APIVersions.Has; the cluster has them all.
API_VERSIONS = (
    "keda.sh/v1alpha1",
    "monitoring.coreos.com/v1",
    "gateway.networking.k8s.io/v1",
    "policy.linkerd.io/v1beta3",
    "policy.linkerd.io/v1alpha1",
)


class ToolMissing(RuntimeError):
    pass


def tool(name: str) -> str:
    """Path of a pinned tool; raises ToolMissing naming the script that installs it."""
    path = BIN / name
    if not os.access(path, os.X_OK):
        hint = "scripts/install-checkov.sh" if name == "checkov" else "scripts/bootstrap.sh"
        raise ToolMissing(f"{name} not found at {path}; run {hint} (it installs the pinned {name} into {BIN})")
    return str(path)


# --- timing log for scripts/bench-offline.sh ------------------------------------------------------
_TIMING = os.environ.get("LLM_STACK_HELM_TIMING")
_timing_lock = threading.Lock()


def run(args: Sequence[str], *, input: str | None = None, timeout: float = 300,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool, capture text output; logs `helm template` calls when LLM_STACK_HELM_TIMING is set."""
    start = time.monotonic()
    proc = subprocess.run(list(args), input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT)
    if _TIMING and Path(args[0]).name == "helm" and args[1] == "template":
        with _timing_lock, open(_TIMING, "a") as f:
            f.write(json.dumps({"args": list(args), "seconds": time.monotonic() - start}) + "\n")
    return proc


# --- rendering --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    """One rendered object and the template it came from."""

    obj: dict[str, Any]
    source: str

    @property
    def kind(self) -> str:
        return self.obj.get("kind", "")

    @property
    def name(self) -> str:
        return self.obj.get("metadata", {}).get("name", "")

    @property
    def namespace(self) -> str:
        return self.obj.get("metadata", {}).get("namespace", "")

    @property
    def labels(self) -> dict[str, str]:
        return self.obj.get("metadata", {}).get("labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.obj.get("metadata", {}).get("annotations") or {}

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.source})"


@dataclass
class Render:
    """The result of one `helm template`."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    manifests: list[Manifest] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def of_kind(self, *kinds: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind in kinds]

    def get(self, kind: str, name: str) -> Manifest | None:
        return next((m for m in self.manifests if m.kind == kind and m.name == name), None)

    @cached_property
    def by_kind(self) -> dict[str, list[Manifest]]:
        out: dict[str, list[Manifest]] = {}
        for m in self.manifests:
            out.setdefault(m.kind, []).append(m)
        return out

    def yaml_text(self) -> str:
        """The manifests as one multi-document YAML stream (for kubeconform, checkov). Each document is
        written as JSON: PyYAML leaves strings such as `n` unquoted, which Go's YAML 1.1 reads as booleans."""
        return "".join("---\n" + json.dumps(m.obj) + "\n" for m in self.manifests)


_SOURCE = re.compile(r"^# Source: (.+)$", re.M)


def parse_manifests(text: str) -> list[Manifest]:
    out: list[Manifest] = []
    for chunk in re.split(r"^---\s*$", text, flags=re.M):
        m = _SOURCE.search(chunk)
        doc = yaml.safe_load(chunk)
        if isinstance(doc, dict) and doc:
            out.append(Manifest(doc, m.group(1) if m else "?"))
    return out


def template_args(
    values: Sequence[Path | str] = (),
    sets: Sequence[str] = (),
    *,
    chart: Path = CHART,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    extra: Sequence[str] = (),
) -> tuple[str, ...]:
    args = [tool("helm"), "template", release, str(chart), "--namespace", namespace,
            "--kube-version", KUBE_VERSION]
    for api in API_VERSIONS:
        args += ["--api-versions", api]
    for v in values:
        args += ["--values", str(v)]
    for s in sets:
        args += ["--set", s]
    return (*args, *extra)


_cache: dict[tuple[str, ...], Render] = {}
_cache_lock = threading.Lock()


def template(args: tuple[str, ...]) -> Render:
    """`helm template` with these arguments, once per session."""
    with _cache_lock:
        if args in _cache:
            return _cache[args]
    proc = run(args)
    r = Render(args, proc.returncode, proc.stdout, proc.stderr)
    if r.ok:
        r.manifests = parse_manifests(proc.stdout)
    with _cache_lock:
        _cache.setdefault(args, r)
        return _cache[args]


def render(values: Sequence[Path | str] = (), sets: Sequence[str] = (), **kw: Any) -> Render:
    return template(template_args(values, sets, **kw))


class _QuotingDumper(yaml.SafeDumper):
    """Quotes every string: Helm's YAML reads a bare n, y, on, off ... as booleans, PyYAML writes them bare."""


_QuotingDumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style='"'))


def render_values(values: dict[str, Any], tmpdir: Path, name: str = "values", **kw: Any) -> Render:
    """Render with a values dict written to a file (keeps types exact, unlike --set)."""
    path = tmpdir / f"{name}.yaml"
    path.write_text(yaml.dump(values, Dumper=_QuotingDumper))
    return render([path], **kw)


def render_many(arg_sets: Iterable[tuple[str, ...]]) -> list[Render]:
    """Render several argument sets in parallel (WORKERS helm processes at a time), cached as usual."""
    todo = list(arg_sets)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(template, todo))


# --- the things under test ------------------------------------------------------------------------
def overlays() -> list[Path]:
    """values/*.yaml, the environment overlays (dev, staging, prod, local)."""
    return sorted(VALUES_DIR.glob("*.yaml"))


def charts() -> list[Path]:
    """The umbrella and every subchart directory (the library included)."""
    return [CHART, *sorted(p for p in (CHART / "charts").iterdir() if (p / "Chart.yaml").is_file())]


def schemas() -> list[Path]:
    return [c / "values.schema.json" for c in charts() if (c / "values.schema.json").is_file()]


def walk(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in a nested structure, paths like spec.template.spec.containers[0].image."""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")


def pod_spec(m: Manifest) -> dict[str, Any] | None:
    """The pod spec of a workload object (Deployment, StatefulSet, Job, ...), or None."""
    spec = m.obj.get("spec") or {}
    if m.kind == "Pod":
        return spec
    if m.kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return (spec.get("template") or {}).get("spec")


# Go template failures that must never reach a user without our own message.
GO_TEMPLATE_ERRORS = re.compile(
    r"nil pointer|wrong type for value|error calling \w+|can't evaluate field|invalid value; expected"
    r"|interface conversion|index out of range|incompatible types for comparison|executing \"[^\"]+\" at <"
)
OUR_FAILURE = "llm-stack: invalid values"
SCHEMA_FAILURE = "values don't meet the specifications of the schema"


def clean_rejection(stderr: str) -> str | None:
    """None when a failed render says why in our words (schema or llm-stack message); else the problem."""
    if SCHEMA_FAILURE in stderr:
        return None
    if OUR_FAILURE in stderr:
        # our fail() is reported by helm as `execute error at (...): ` + our text: that's fine.
        before = stderr.split(OUR_FAILURE, 1)[0]
        if GO_TEMPLATE_ERRORS.search(before.replace("execution error at", "")):
            return f"a Go template error precedes our message: {stderr.strip()}"
        return None
    return f"neither a schema error nor '{OUR_FAILURE}': {stderr.strip()}"


def deep_merge(base: Any, over: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v) if k in base else v
        return out
    return over


def effective_values(values: Sequence[Path | str] = ()) -> dict[str, Any]:
    """The umbrella's values.yaml with the given files merged over it (what the templates see)."""
    out: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text()) or {}
    for v in values:
        out = deep_merge(out, yaml.safe_load(Path(v).read_text()) or {})
    return out
