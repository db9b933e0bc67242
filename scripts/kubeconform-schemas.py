#!/usr/bin/env python3
"""Writes kubeconform JSON schemas (standalone: every $ref inlined; strict: closed objects) from
  k8s  DIR OUT     the OpenAPI v3 documents of a Kubernetes release (api/openapi-spec/v3/*.json)
                   -> OUT/<kind>[-<group>]-<version>.json, kubeconform's own naming, so its default
                   template `{{.ResourceKind}}{{.KindSuffix}}.json` finds them
  crd  OUT FILE... CustomResourceDefinition manifests
                   -> OUT/<group>/<kind>_<version>.json (template `{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json`)

Called by scripts/fetch-crds.sh; needs PyYAML (the harness venv has it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]


def _nullable(node: Schema) -> None:
    if node.pop("nullable", False) and "type" in node:
        t = node["type"]
        node["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]


def _strict(node: Schema) -> None:
    """Close every object that lists its properties, as the API server's pruning would drop the rest."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False


def _int_or_string(node: Schema) -> None:
    if node.pop("x-kubernetes-int-or-string", False) and "oneOf" not in node and "anyOf" not in node:
        node.pop("type", None)
        node["oneOf"] = [{"type": "integer"}, {"type": "string"}]


def normalize(node: Any, resolve=None, stack: tuple[str, ...] = ()) -> Any:
    """Inline $refs (a cycle becomes {}), drop descriptions, and apply the strict/nullable rules."""
    if isinstance(node, list):
        return [normalize(x, resolve, stack) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and resolve is not None:
        ref = node["$ref"]
        if ref in stack:
            return {}
        return normalize(resolve(ref), resolve, (*stack, ref))
    out: Schema = {}
    for k, v in node.items():
        if k in ("description", "example", "x-kubernetes-group-version-kind"):
            continue
        if k == "properties":
            out[k] = {p: normalize(s, resolve, stack) for p, s in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = normalize(v, resolve, stack)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [normalize(s, resolve, stack) for s in v]
        else:
            out[k] = v
    # allOf with a single $ref is how OpenAPI v3 attaches a default to a reference: flatten it.
    if "allOf" in out and len(out["allOf"]) == 1 and "properties" not in out:
        inner = out.pop("allOf")[0]
        out.pop("default", None)
        out = {**inner, **out}
    _int_or_string(out)
    _nullable(out)
    _strict(out)
    return out


def kind_suffix(group: str, version: str) -> str:
    # kubeconform: "-" + first DNS label of the group (none for the core group) + "-" + version
    return f"-{group.split('.')[0].lower()}-{version}" if group else f"-{version}"


def from_kubernetes(src: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for doc_path in sorted(src.glob("*.json")):
        schemas: dict[str, Schema] = json.loads(doc_path.read_text()).get("components", {}).get("schemas", {})

        def resolve(ref: str, schemas: dict[str, Schema] = schemas) -> Schema:
            return schemas[ref.rsplit("/", 1)[-1]]

        for name, schema in schemas.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                # List and *Options kinds are registered for every group; kubeconform never needs them.
                if gvk["kind"].endswith(("List", "Options")) or gvk["kind"] == "WatchEvent":
                    continue
                if gvk["kind"] in ("Status", "APIVersions", "APIGroup", "APIResourceList") and name.startswith(
                    "io.k8s.apimachinery"
                ):
                    continue
                target = out / f"{gvk['kind'].lower()}{kind_suffix(gvk['group'], gvk['version'])}.json"
                body = normalize(schema, resolve, (name,))
                target.write_text(json.dumps(body, separators=(",", ":")))
                written += 1
    return written


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads a bare `=` as the obscure !!value tag; the CRDs mean the string "=" (a relabel action)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _crd_docs(path: Path) -> list[Schema]:
    docs = yaml.load_all(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    return [d for d in docs if d and d.get("kind") == "CustomResourceDefinition"]


def from_crds(out: Path, files: list[Path]) -> int:
    written = 0
    for path in files:
        for crd in _crd_docs(path):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for ver in crd["spec"]["versions"]:
                if not ver.get("served", True):
                    continue
                schema = (ver.get("schema") or {}).get("openAPIV3Schema")
                if schema is None:
                    raise SystemExit(f"{path}: {kind} {ver['name']} has no openAPIV3Schema")
                body = normalize(schema)
                props = body.setdefault("properties", {})
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                props.setdefault("metadata", {"type": "object"})
                body["additionalProperties"] = False
                target = out / group / f"{kind.lower()}_{ver['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(body, separators=(",", ":")))
                written += 1
    return written


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("k8s", "crd"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "k8s":
        n = from_kubernetes(Path(argv[1]), Path(argv[2]))
    else:
        n = from_crds(Path(argv[1]), [Path(p) for p in argv[2:]])
    print(f"wrote {n} schemas", file=sys.stderr)
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
