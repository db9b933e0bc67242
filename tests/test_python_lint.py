"""The harness, the load tests and the helper scripts stay ruff-clean (rules in pyproject.toml)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests import helm


def test_python_code_is_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    targets = ["tests", "loadtests", *[str(p.relative_to(helm.ROOT)) for p in sorted((helm.ROOT / "scripts").glob("*.py"))]]
    proc = helm.run([ruff, "check", "--output-format", "concise", *targets])
    assert proc.returncode == 0, f"ruff check:\n{proc.stdout}{proc.stderr}"
