"""Property tests: values inside the schema render valid Kubernetes; values just outside it are refused
with our words (helm's schema error or `llm-stack: invalid values`), never with a Go template error."""
from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import helm
from tests.test_kubeconform import kubeconform, validate  # noqa: F401 - kubeconform is a fixture

pytestmark = pytest.mark.slow

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same 25 examples every run: a failure reproduces, CI does not flake
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NAME = st.from_regex(re.compile(r"^[a-z]([-a-z0-9]{0,8}[a-z0-9])?$"), fullmatch=True)
HF_ID = st.from_regex(re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,10}/[A-Za-z0-9][A-Za-z0-9._-]{0,14}$"), fullmatch=True)


@st.composite
def model(draw: st.DrawFn, name: str, mode: str) -> dict[str, Any]:
    # the model id carries the name: two models serving the same id are refused (one served name each)
    m: dict[str, Any] = {"name": name, "model": f"{draw(HF_ID)}-{name}"}
    if draw(st.booleans()):
        m["revision"] = draw(st.sampled_from(["main", "v1.0", "a1b2c3d4"]))
    strategy = draw(st.sampled_from(["none", "canary", "blueGreen", None]))
    if strategy == "canary":
        m["rollout"] = {"strategy": "canary",
                        "canary": {"weight": draw(st.integers(0, 100)), "replicas": draw(st.integers(1, 3))}}
    elif strategy == "blueGreen":
        m["rollout"] = {"strategy": "blueGreen", "blueGreen": {"active": draw(st.sampled_from(["blue", "green"]))}}
    elif strategy == "none":
        m["rollout"] = {"strategy": "none"}
    if mode in ("hpa", "keda") and draw(st.booleans()):
        lo = draw(st.integers(1, 2))
        hi = draw(st.integers(max(lo, 2), 6))  # keda's default fallback (2 replicas) must fit in lo..hi
        m["autoscaling"] = {"minReplicas": lo, "maxReplicas": hi}
    return m


@st.composite
def valid_values(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    scaling = draw(st.booleans())
    mode = draw(st.sampled_from(["hpa", "keda", "none"]))
    effective = mode if scaling else "none"
    models = [draw(model(n, effective)) for n in names]
    return {
        "global": {
            "namespace": draw(st.sampled_from(["", "serving", "llm-prod"])),
            "models": models,
            "mesh": {"enabled": draw(st.booleans())},
            "autoscaling": {"enabled": scaling, "mode": mode},
            "storage": {"enabled": draw(st.booleans()), "mode": draw(st.sampled_from(["perModel", "shared"]))},
        },
        "observability": {"enabled": draw(st.booleans())},
    }


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


JUNK = st.one_of(
    st.integers(-3, 200), st.just(""), st.just("latest"), st.just("1Gi"), st.just("NOT a name"),
    st.booleans(), st.lists(st.integers(0, 2), max_size=2), st.just({"bogus": 1}), st.floats(-1, 1.5),
)


@st.composite
def mutated_values(draw: st.DrawFn) -> dict[str, Any]:
    """A valid values file with one thing changed: a value of another type or range, an unknown key,
    a duplicate model, or min > max."""
    v = copy.deepcopy(draw(valid_values()))
    kind = draw(st.sampled_from(["junk", "junk", "junk", "unknown-key", "duplicate", "min-max"]))
    if kind == "junk":
        path = draw(st.sampled_from(_paths(v)))
        _set(v, path, draw(JUNK))
    elif kind == "unknown-key":
        path = draw(st.sampled_from([p for p in _paths(v) if isinstance(_get(v, p), dict)] or [("global",)]))
        _get(v, path)["unexpectedKey"] = 1
    elif kind == "duplicate":
        v["global"]["models"].append(copy.deepcopy(v["global"]["models"][0]))
    else:
        v["global"]["autoscaling"] = {"enabled": True, "mode": "hpa"}
        v["global"]["models"][0]["autoscaling"] = {"minReplicas": 4, "maxReplicas": 2}
    return v


def _get(obj: Any, path: tuple) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _render(values: dict[str, Any]) -> helm.Render:
    with tempfile.TemporaryDirectory() as d:
        return helm.render_values(values, Path(d))


@BOUNDED
@given(values=valid_values())
def test_values_inside_the_schema_render_valid_kubernetes(kubeconform: list[str], values: dict[str, Any]) -> None:  # noqa: F811
    r = _render(values)
    assert r.ok, f"valid values were refused:\n{values}\n{r.stderr}"
    problems = validate(kubeconform, r.yaml_text())
    assert not problems, f"{values}\n" + "\n".join(problems)


@BOUNDED
@given(values=mutated_values())
def test_values_outside_the_schema_fail_in_our_words(kubeconform: list[str], values: dict[str, Any]) -> None:  # noqa: F811
    r = _render(values)
    if r.ok:
        # Some mutations stay valid (a bool for a bool, 3 for a weight): then the result must be valid too.
        problems = validate(kubeconform, r.yaml_text())
        assert not problems, f"accepted values rendered invalid objects:\n{values}\n" + "\n".join(problems)
        return
    problem = helm.clean_rejection(r.stderr)
    assert problem is None, f"{values}\n{problem}"
    assert not helm.GO_TEMPLATE_ERRORS.search(r.stderr.split(helm.OUR_FAILURE)[0].split(helm.SCHEMA_FAILURE)[0]), (
        f"a Go template error reached the user:\n{values}\n{r.stderr}"
    )
