"""Values for the e2e installs that are not an overlay: one place that knows the chart's value shapes.

Every e2e test that declares its own models goes through `model()` and `values()`, so a change in the
vllm subchart's value layout is one edit here.
"""
from __future__ import annotations

from typing import Any

A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"


def model(name: str, *, product: str, gpus: int = 1, replicas: int = 1, engine: dict[str, Any] | None = None,
          extra_args: list[str] | None = None, revision: str = "", rollout: dict[str, Any] | None = None,
          vllm: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of global.models, with the vllm overrides (charts/vllm `defaults` shape) the tests need."""
    over: dict[str, Any] = {"replicas": replicas, "gpu": {"count": gpus, "product": product}}
    if engine:
        over["engine"] = engine
    if extra_args is not None:
        over["extraArgs"] = extra_args
    over.update(vllm or {})
    m: dict[str, Any] = {"name": name, "model": f"e2e/{name}", "vllm": over}
    if revision:
        m["revision"] = revision
    if rollout:
        m["rollout"] = rollout
    return m


def values(*models: dict[str, Any], storage: bool = False, mesh: bool = False, namespace: str = "",
           **extra: Any) -> dict[str, Any]:
    """Umbrella values: these models, autoscaling off (fixed replicas), mesh and storage as asked."""
    g: dict[str, Any] = {
        "models": list(models),
        "autoscaling": {"enabled": False},
        "mesh": {"enabled": mesh},
        "storage": {"enabled": storage},
    }
    if namespace:
        g["namespace"] = namespace
    return {"global": g, **extra}


def fullname(release: str, model_name: str) -> str:
    return f"{release}-{model_name}"[:52].rstrip("-")


def model_selector(release: str, model_name: str, **extra: str) -> str:
    labels = {"app.kubernetes.io/instance": release, "llm-stack.io/model": model_name, **extra}
    return ",".join(f"{k}={v}" for k, v in labels.items())
