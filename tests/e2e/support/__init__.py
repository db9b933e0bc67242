"""Local stand-ins for what would be pods on a real cluster (the vLLM simulator per pod, Prometheus, KEDA,
prometheus-adapter), wired to the local control plane for the autoscaling and observability e2e tests."""
