"""promtool unit tests of the alerts the chart ships: each alert fires when its condition holds for its
`for` duration, and stays silent just below the threshold, before `for` has elapsed, and for other models.

The rules are extracted from the rendered PrometheusRule (tests/rules/values.yaml, release "llm",
namespace "llm-test") and written beside a copy of tests/rules/*.test.yaml, which name them
`llm-stack-rules.yaml`. Annotations are dropped from the extracted rules: these tests are about when
an alert fires and with which labels, not about its prose.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require
from tests.e2e.support import chart

HERE = Path(__file__).resolve().parent
TEST_FILES = sorted(HERE.glob("*.test.yaml"))
NAMESPACE = "llm-test"


@pytest.fixture(scope="module")
def rule_groups(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    values = yaml.safe_load((HERE / "values.yaml").read_text())
    manifests = chart.render(values, NAMESPACE, tmp_path_factory.mktemp("render"))
    groups = chart.rule_groups(manifests)
    if not groups:
        pytest.fail("the chart rendered no PrometheusRule with tests/rules/values.yaml", pytrace=False)
    for g in groups:
        for r in g["rules"]:
            r.pop("annotations", None)
    return groups


@pytest.fixture(scope="module")
def rules_dir(rule_groups: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("promtool")
    (d / "llm-stack-rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
    for f in TEST_FILES:
        shutil.copy(f, d / f.name)
    return d


def alerts_tested(path: Path) -> tuple[set[str], set[str]]:
    """(alerts some case expects firing, alerts some case expects silent) in one test file."""
    firing, silent = set(), set()
    for t in yaml.safe_load(path.read_text())["tests"]:
        for c in t.get("alert_rule_test") or []:
            (firing if c.get("exp_alerts") else silent).add(c["alertname"])
    return firing, silent


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(test_file: Path, rules_dir: Path) -> None:
    promtool = require("promtool")
    p = subprocess.run([promtool, "test", "rules", test_file.name], cwd=rules_dir, check=False, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, f"promtool test rules {test_file.name} failed:\n{p.stdout}\n{p.stderr}"


def test_every_alert_has_a_firing_and_a_silent_case(rule_groups: list[dict[str, Any]]) -> None:
    alerts = {r["alert"] for g in rule_groups for r in g["rules"] if "alert" in r}
    firing: set[str] = set()
    silent: set[str] = set()
    for f in TEST_FILES:
        fi, si = alerts_tested(f)
        firing |= fi
        silent |= si
    assert not alerts - firing, f"alerts without a promtool case that fires them: {sorted(alerts - firing)}"
    assert not alerts - silent, f"alerts without a promtool case that keeps them silent: {sorted(alerts - silent)}"
    assert not (firing | silent) - alerts, f"tests name alerts the chart does not ship: {sorted((firing | silent) - alerts)}"


def test_rule_files_pass_promtool_check(rules_dir: Path) -> None:
    p = subprocess.run([require("promtool"), "check", "rules", "llm-stack-rules.yaml"], cwd=rules_dir,
                       check=False, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


