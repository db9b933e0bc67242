#!/usr/bin/env python3
"""Writes CustomResourceDefinitions for the Linkerd policy kinds llm-stack's mesh subchart uses.

Why not upstream's: the Go module proxy refuses github.com/linkerd/linkerd2 (403) and Linkerd's Helm
repository and GitHub are unreachable here, and no reachable module or npm/PyPI package ships the CRDs.
So these schemas are written by us from Linkerd's documented policy API (policy.linkerd.io, as served by
Linkerd LINKERD_VERSION; see linkerd.io/2/reference/authorization-policy). They are stricter than
upstream's in one way: every object is closed (the API server would prune unknown fields silently, which
hides typos), and in one way looser: enums that Linkerd's admission webhook (not its CRD) checks are
kept as the documented sets. Installed into the KWOK cluster they let the e2e tests apply mesh objects;
converted by kubeconform-schemas.py they let kubeconform validate them offline.

Usage: linkerd-policy-crds.py OUT_FILE
"""
from __future__ import annotations

import sys
from typing import Any

import yaml

S = dict[str, Any]

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def string(**kw: Any) -> S:
    return {"type": "string", **kw}


def obj(props: S, required: list[str] | None = None, **kw: Any) -> S:
    out: S = {"type": "object", "properties": props, **kw}
    if required:
        out["required"] = required
    return out


def label_selector() -> S:
    return obj(
        {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {
                "type": "array",
                "items": obj(
                    {
                        "key": string(),
                        "operator": string(enum=["In", "NotIn", "Exists", "DoesNotExist"]),
                        "values": {"type": "array", "items": string()},
                    },
                    ["key", "operator"],
                ),
            },
        }
    )


def ref(namespaced: bool) -> S:
    props: S = {
        "group": string(maxLength=253, pattern=r"^$|" + DNS_SUBDOMAIN[1:]),
        "kind": string(minLength=1, maxLength=63, pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"),
        "name": string(minLength=1, maxLength=253),
    }
    if namespaced:
        props["namespace"] = string(maxLength=253)
    return obj(props, ["kind", "name"])


ACCESS = ["deny", "all-unauthenticated", "all-authenticated", "cluster-unauthenticated",
          "cluster-authenticated", "audit"]
PROTOCOLS = ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"]


def server_spec(version: str) -> S:
    props: S = {
        "podSelector": label_selector(),
        "port": {"x-kubernetes-int-or-string": True},
        "proxyProtocol": string(enum=PROTOCOLS),
    }
    spec = obj(props, ["podSelector", "port"])
    if version in ("v1beta2", "v1beta3"):
        props["externalWorkloadSelector"] = label_selector()
        spec["required"] = ["port"]
        spec["oneOf"] = [{"required": ["podSelector"]}, {"required": ["externalWorkloadSelector"]}]
    if version == "v1beta3":
        props["accessPolicy"] = string(enum=ACCESS)
    return spec


def crd(plural: str, kind: str, versions: dict[str, S], storage: str, short: list[str]) -> S:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.policy.linkerd.io", "labels": {"llm-stack.io/schema-source": "llm-stack"}},
        "spec": {
            "group": "policy.linkerd.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "shortNames": short},
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": v == storage,
                    "schema": {"openAPIV3Schema": obj({"spec": spec}, ["spec"])},
                }
                for v, spec in versions.items()
            ],
        },
    }


def crds() -> list[S]:
    return [
        crd("servers", "Server", {v: server_spec(v) for v in ("v1beta1", "v1beta2", "v1beta3")}, "v1beta3", ["srv"]),
        crd(
            "authorizationpolicies",
            "AuthorizationPolicy",
            {"v1alpha1": obj({"targetRef": ref(False), "requiredAuthenticationRefs": {"type": "array", "items": ref(True)}},
                             ["targetRef", "requiredAuthenticationRefs"])},
            "v1alpha1",
            ["authzpolicy"],
        ),
        crd(
            "meshtlsauthentications",
            "MeshTLSAuthentication",
            {"v1alpha1": obj(
                {"identities": {"type": "array", "items": string(minLength=1)},
                 "identityRefs": {"type": "array", "items": ref(True)}},
                oneOf=[{"required": ["identities"]}, {"required": ["identityRefs"]}],
            )},
            "v1alpha1",
            ["meshtlsauthn"],
        ),
        crd(
            "networkauthentications",
            "NetworkAuthentication",
            {"v1alpha1": obj(
                {"networks": {"type": "array", "minItems": 1,
                              "items": obj({"cidr": string(), "except": {"type": "array", "items": string()}}, ["cidr"])}},
                ["networks"],
            )},
            "v1alpha1",
            ["netauthn"],
        ),
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "w") as f:
        f.write("# Generated by scripts/linkerd-policy-crds.py (llm-stack's own schemas; see its docstring).\n")
        yaml.safe_dump_all(crds(), f, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
