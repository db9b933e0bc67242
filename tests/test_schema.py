"""Values are checked before anything renders: schemas are valid, overlays pass, bad values are refused
with a message that names the offending path."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from tests import helm
from tests.conftest import OVERLAY_IDS

INVALID = sorted((helm.DATA / "invalid").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    """The `# expect: <regex>` header lines of a corpus file (all must match helm's stderr)."""
    found = [m.group(1).strip() for m in re.finditer(r"^# expect: (.+)$", path.read_text(), re.M)]
    assert found, f"{path.name}: no '# expect: <regex>' header"
    return found


@pytest.mark.parametrize("schema_path", helm.schemas(), ids=lambda p: p.parent.name)
def test_schema_is_valid_against_its_metaschema(schema_path: Path) -> None:
    schema = json.loads(schema_path.read_text())
    declared = schema.get("$schema", "")
    # Helm 3.19 validates with draft-07 or 2020-12 (whatever the schema declares); we declare one of them.
    assert declared in (
        "http://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft/2020-12/schema",
    ), f"{schema_path}: $schema must declare draft-07 or 2020-12, not {declared!r}"
    jsonschema.validators.validator_for(schema).check_schema(schema)


@pytest.mark.parametrize("schema_path", helm.schemas(), ids=lambda p: p.parent.name)
def test_schema_refs_resolve(schema_path: Path) -> None:
    """A $ref to a missing definition is only noticed by helm when a value reaches it; find it now."""
    schema = json.loads(schema_path.read_text())
    for where, node in helm.walk(schema):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target = schema
            for part in node["$ref"][2:].split("/"):
                assert isinstance(target, dict) and part in target, f"{schema_path}: {where}: {node['$ref']} does not resolve"
                target = target[part]


def test_there_is_a_schema_per_chart_with_values() -> None:
    for chart in helm.charts():
        if (chart / "values.yaml").is_file() and chart.name != "llm-common":
            assert (chart / "values.schema.json").is_file(), f"{chart} has values.yaml but no values.schema.json"


def test_overlays_exist() -> None:
    names = {p.stem for p in helm.overlays()}
    missing = {"dev", "staging", "prod", "local"} - names
    assert not missing, f"values/ lacks the overlays {sorted(missing)}"


@pytest.mark.parametrize("overlay", OVERLAY_IDS)
def test_overlay_passes_the_schemas(renders: dict[str, helm.Render], overlay: str) -> None:
    r = renders[overlay]
    assert r.ok, f"overlay {overlay} is refused:\n{r.stderr}"


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 40, f"only {len(INVALID)} invalid values files in tests/data/invalid"


@pytest.fixture(scope="session")
def rejected(helm_bin: str) -> dict[str, helm.Render]:
    args = [helm.template_args([p]) for p in INVALID]
    return {p.stem: r for p, r in zip(INVALID, helm.render_many(args), strict=True)}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_values_are_rejected_naming_the_path(rejected: dict[str, helm.Render], path: Path) -> None:
    r = rejected[path.stem]
    assert not r.ok, f"{path.name} was accepted; it must be refused"
    problem = helm.clean_rejection(r.stderr)
    assert problem is None, f"{path.name}: {problem}"
    for pattern in expectations(path):
        assert re.search(pattern, r.stderr), f"{path.name}: stderr does not match /{pattern}/:\n{r.stderr}"
