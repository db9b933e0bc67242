"""Every rendered object is valid against the pinned Kubernetes API and the pinned CRDs (kubeconform
-strict, schemas generated offline by scripts/fetch-crds.sh)."""
from __future__ import annotations

import json

import pytest

from tests import helm
from tests.conftest import require

K8S_SCHEMAS = helm.CACHE / "schemas" / "kubernetes" / f"{helm.KUBE_VERSION}-standalone-strict"
CRD_SCHEMAS = helm.CACHE / "schemas" / "crds"
LOCATIONS = (
    str(helm.CACHE / "schemas" / "kubernetes") + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
    "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
    str(CRD_SCHEMAS) + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
)


@pytest.fixture(scope="session")
def kubeconform() -> list[str]:
    binary = require("kubeconform")
    if not (K8S_SCHEMAS / "deployment-apps-v1.json").is_file() or not CRD_SCHEMAS.is_dir():
        pytest.fail(
            f"no kubeconform schemas under {helm.CACHE / 'schemas'}; run scripts/fetch-crds.sh "
            "(or scripts/bootstrap.sh --only crds)",
            pytrace=False,
        )
    args = [binary, "-strict", "-summary", "-output", "json", "-kubernetes-version", helm.KUBE_VERSION.lstrip("v")]
    for loc in LOCATIONS:
        args += ["-schema-location", loc]
    return args


def validate(kubeconform: list[str], text: str) -> list[str]:
    """kubeconform's complaints about a YAML stream (missing schemas count as complaints)."""
    proc = helm.run([*kubeconform, "-"], input=text)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [f"kubeconform failed: {proc.stdout}{proc.stderr}"]
    problems = [
        f"{r.get('kind')}/{r.get('name')}: {r.get('status')}: {r.get('msg')}"
        for r in report.get("resources", [])
        if r.get("status") not in ("statusValid",)
    ]
    if proc.returncode and not problems:
        problems.append(f"kubeconform exited {proc.returncode}: {proc.stderr}")
    return problems


def test_overlay_objects_are_valid_kubernetes(kubeconform: list[str], rendered: helm.Render) -> None:
    problems = validate(kubeconform, rendered.yaml_text())
    assert not problems, "\n".join(problems)


def test_kubeconform_catches_a_bad_object(kubeconform: list[str]) -> None:
    """The schemas are strict: an unknown field is an error, not a pass (else every test above is void)."""
    bad = (
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\n"
        "spec: {scaleTargetRef: {name: x}, triggers: [{type: prometheus, metadata: {threshold: 5}}], bogus: 1}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}},"
        " spec: {containers: [{name: c, image: 'x:1', ports: [{containerPort: '8000'}]}]}}}\n"
        "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: x}\n"
        "spec: {podSelector: {matchLabels: {a: b}}, port: http, proxyProtocol: HTTP/3}\n"
    )
    problems = validate(kubeconform, bad)
    assert len(problems) == 3, "\n".join(problems) or "kubeconform accepted invalid objects"
