"""Every chart passes `helm lint --strict` alone, and the suite passes chart-testing's `ct lint`
(Chart.yaml schema, yamllint, version rules) the way users' CI runs it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import helm
from tests.conftest import require


@pytest.mark.parametrize("chart", helm.charts(), ids=lambda p: p.name)
def test_chart_passes_helm_lint_strict(chart: Path) -> None:
    proc = helm.run([require("helm"), "lint", "--strict", str(chart)])
    assert proc.returncode == 0, f"helm lint --strict {chart}:\n{proc.stdout}\n{proc.stderr}"


def test_suite_passes_ct_lint(tmp_path: Path) -> None:
    ct = require("ct")
    for dep in ("yamllint", "yamale"):
        require(dep)
    etc = Path(ct).resolve().parent / "etc"
    # ct writes dependency archives next to the charts: lint a copy so the tree stays clean.
    shutil.copytree(helm.ROOT / "charts", tmp_path / "charts", symlinks=True)
    shutil.copy(helm.ROOT / "ct.yaml", tmp_path / "ct.yaml")
    proc = helm.run([ct, "lint", "--config", "ct.yaml", "--skip-helm-dependencies",
                     "--lint-conf", str(etc / "lintconf.yaml"), "--chart-yaml-schema", str(etc / "chart_schema.yaml")],
                    cwd=tmp_path)
    assert proc.returncode == 0, f"ct lint failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "All charts linted successfully" in proc.stdout + proc.stderr
