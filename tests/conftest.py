"""Fixtures shared by the offline tests: the pinned tools, one render per overlay per session.

Markers (registered in pyproject.toml): e2e and load need a cluster or the simulator; slow marks the
property tests. The offline suite is `pytest tests -m "not e2e and not load"`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests import helm


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"llm-stack: tools from {helm.BIN}, Kubernetes {helm.KUBE_VERSION}, {helm.WORKERS} helm workers"]


def require(name: str) -> str:
    """A pinned tool, or fail (never skip) naming the script that installs it."""
    try:
        return helm.tool(name)
    except helm.ToolMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def helm_bin() -> str:
    return require("helm")


# Every overlay, the chart's own defaults ("default") and the scenarios of tests/data/scenarios
# ("scenario-<name>": features the overlays may not switch on, such as canary or blue/green).
SCENARIOS = sorted((helm.DATA / "scenarios").glob("*.yaml"))
OVERLAY_IDS = ["default", *[p.stem for p in helm.overlays()], *[f"scenario-{p.stem}" for p in SCENARIOS]]


def overlay_values(name: str) -> list[Path]:
    if name == "default":
        return []
    if name.startswith("scenario-"):
        return [helm.DATA / "scenarios" / f"{name.removeprefix('scenario-')}.yaml"]
    return [helm.VALUES_DIR / f"{name}.yaml"]


@pytest.fixture(scope="session")
def renders(helm_bin: str) -> dict[str, helm.Render]:
    """Each overlay rendered once per session, in parallel."""
    args = [helm.template_args(overlay_values(o)) for o in OVERLAY_IDS]
    return dict(zip(OVERLAY_IDS, helm.render_many(args), strict=True))


@pytest.fixture(params=OVERLAY_IDS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def rendered(renders: dict[str, helm.Render], overlay: str) -> helm.Render:
    """The render of one overlay; fails the test (with helm's message) when it does not render."""
    r = renders[overlay]
    if not r.ok:
        pytest.fail(f"helm template of overlay {overlay!r} failed:\n{r.stderr}", pytrace=False)
    return r
