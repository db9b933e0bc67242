"""The committed READMEs are what helm-docs generates from the charts' values.yaml comments."""
from __future__ import annotations

import difflib
import shutil
from pathlib import Path

from tests import helm
from tests.conftest import require

# Keep in step with how the READMEs are generated (scripts or CI): same flags, same output.
HELM_DOCS_ARGS: tuple[str, ...] = ()  # helm-docs defaults (values sorted alphanumerically)


def test_readmes_match_helm_docs(tmp_path: Path) -> None:
    binary = require("helm-docs")
    copy = tmp_path / "charts"
    shutil.copytree(helm.ROOT / "charts", copy, symlinks=True)
    for readme in copy.rglob("README.md"):
        readme.unlink()
    proc = helm.run([binary, "--chart-search-root", str(copy), *HELM_DOCS_ARGS, "--log-level", "warning"])
    assert proc.returncode == 0, f"helm-docs failed:\n{proc.stderr}"
    problems = []
    for generated in sorted(copy.rglob("README.md")):
        rel = generated.relative_to(copy)
        committed = helm.ROOT / "charts" / rel
        if not committed.is_file():
            problems.append(f"charts/{rel}: missing; run helm-docs {' '.join(HELM_DOCS_ARGS)}")
            continue
        diff = list(difflib.unified_diff(committed.read_text().splitlines(), generated.read_text().splitlines(),
                                         f"committed charts/{rel}", "helm-docs", lineterm="", n=1))
        if diff:
            problems.append("\n".join(diff[:40]))
    assert not problems, "READMEs drift from values.yaml (regenerate with helm-docs):\n" + "\n\n".join(problems)


def test_every_chart_has_a_readme() -> None:
    for chart in helm.charts():
        assert (chart / "README.md").is_file(), f"{chart} has no README.md"
