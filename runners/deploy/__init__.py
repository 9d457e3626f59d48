"""Kubernetes deployment: the Helm chart under deploy/helm/imgrec, its offline validation and its tools."""
