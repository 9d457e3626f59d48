"""Operating the service: the pipeline exporter, Prometheus rules, Grafana dashboards generated from Python."""
