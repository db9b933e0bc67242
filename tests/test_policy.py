"""Security policy over every overlay's manifests: checkov's Kubernetes checks. A finding is either fixed
in the charts or kept in .checkov.yaml with its reason (a comment on the same line)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests import helm
from tests.conftest import OVERLAY_IDS, require

CONFIG = helm.ROOT / ".checkov.yaml"


def skipped_checks() -> dict[str, str]:
    """check id -> reason, from .checkov.yaml's skip-check list and the comment on each line."""
    out: dict[str, str] = {}
    in_list = False
    for line in CONFIG.read_text().splitlines():
        if re.match(r"^skip-check:\s*$", line):
            in_list = True
            continue
        if in_list:
            m = re.match(r"^\s+-\s+([A-Z0-9_]+)\s*(?:#\s*(.*))?$", line)
            if m:
                out[m.group(1)] = (m.group(2) or "").strip()
            elif line.strip() and not line.lstrip().startswith("#"):
                in_list = False
    return out


def test_every_kept_finding_has_a_reason() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert set(config.get("skip-check", [])) == set(skipped_checks()), ".checkov.yaml: one check id per line, please"
    for check, reason in skipped_checks().items():
        assert len(reason) > 15, f".checkov.yaml: {check} is skipped without a reason (write it as a comment on its line)"


@pytest.fixture(scope="session")
def checkov_report(renders: dict[str, helm.Render], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """One checkov run over every overlay (it takes seconds to start): overlay -> failed checks."""
    binary = require("checkov")
    d = tmp_path_factory.mktemp("checkov")
    for name, r in renders.items():
        if r.ok:
            (d / f"{name}.yaml").write_text(r.yaml_text())
    proc = helm.run([binary, "--config-file", str(CONFIG), "-d", str(d), "--framework", "kubernetes",
                     "--output", "json", "--quiet", "--compact", "--skip-download"], timeout=600)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    out: dict[str, list[dict]] = {name: [] for name in renders}
    for rep in reports:
        for f in rep.get("results", {}).get("failed_checks", []):
            out.setdefault(Path(f["file_path"]).stem, []).append(f)
    return out


@pytest.mark.parametrize("overlay", OVERLAY_IDS)
def test_no_unexplained_security_findings(checkov_report: dict[str, list[dict]], overlay: str) -> None:
    findings = [f"{f['check_id']} {f['check_name']} -- {f['resource']}" for f in checkov_report.get(overlay, [])]
    assert not findings, (
        f"checkov findings in {overlay} (fix the chart, or keep them in .checkov.yaml with a reason):\n"
        + "\n".join(sorted(set(findings)))
    )
