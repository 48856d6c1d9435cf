"""Operating the app: structured logs, Prometheus metrics, readiness and request limits."""
