"""Render the Helm chart for a size and validate what it renders, offline.

Built-in kinds are checked against the Kubernetes JSON schemas bundled in `kubernetes-validate` (strict: unknown
fields fail) for the oldest Kubernetes the chart supports and a current one; custom resources (KEDA, Flink
operator) against their CRD schemas with the npm packages in deploy/validate. A kind neither knows fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from runners.deploy.tools import VALIDATOR_DIR
from transforms.settings import REPO_ROOT

CHART_DIR = REPO_ROOT / "deploy" / "helm" / "imgrec"
SIZES = ("small", "large")
# The chart's kubeVersion floor and a current release.
KUBE_VERSIONS = ("1.29.0", "1.33.0")
Manifest = dict[str, Any]


class ChartError(RuntimeError):
    """helm (or the CRD validator) failed; the message carries its output."""


@dataclass(frozen=True)
class Finding:
    """One manifest that does not validate."""

    kind: str
    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.problem}"


def values_file(size: str) -> Path:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    return CHART_DIR / f"values-{size}.yaml"


def run_helm(helm: Path, *args: str) -> str:
    """Run helm with its cache, config and data folders in a scratch directory (nothing is read from $HOME)."""
    with tempfile.TemporaryDirectory(prefix="imgrec-helm-") as home:
        env = {**os.environ, "HELM_CACHE_HOME": f"{home}/cache", "HELM_CONFIG_HOME": f"{home}/config",
               "HELM_DATA_HOME": f"{home}/data"}
        done = subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise ChartError(f"helm {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def lint(helm: Path, size: str) -> str:
    """`helm lint --strict` with the size's values; its output (raises ChartError on any finding)."""
    return run_helm(helm, "lint", "--strict", str(CHART_DIR), "-f", str(values_file(size)))


def render(helm: Path, size: str, *, release: str = "imgrec", namespace: str = "imgrec",
           overrides: tuple[str, ...] = ()) -> list[Manifest]:
    """`helm template` with the size's values (and `--set` overrides), as a list of manifests."""
    args = ["template", release, str(CHART_DIR), "-f", str(values_file(size)), "--namespace", namespace,
            "--kube-version", KUBE_VERSIONS[0]]
    for override in overrides:
        args += ["--set", override]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args)) if doc]


def validate_builtin(manifests: list[Manifest]) -> tuple[list[Finding], list[Manifest]]:
    """Findings of the built-in kinds, and the manifests that are not built-in (custom resources)."""
    findings: list[Finding] = []
    custom: list[Manifest] = []
    for manifest in manifests:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                custom.append(manifest)
                break
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(part) for part in exc.absolute_path)
                findings.append(_finding(manifest, f"Kubernetes {version}: {where}: {exc.message}"))
    return findings, custom


def validate_custom(manifests: list[Manifest]) -> list[Finding]:
    """Findings of custom resources against their CRD schemas (node + the npm packages)."""
    if not manifests:
        return []
    done = subprocess.run(["node", "validate-crs.mjs"], input=json.dumps(manifests), capture_output=True, text=True,
                          cwd=VALIDATOR_DIR, check=False)
    if done.returncode != 0:
        raise ChartError(f"CRD validation failed ({done.returncode}): {done.stderr.strip()}")
    return [Finding(r["kind"], r["name"], r["error"]) for r in json.loads(done.stdout) if r["error"]]


def validate(manifests: list[Manifest]) -> list[Finding]:
    """Every finding of a rendered chart: built-in kinds and custom resources."""
    findings, custom = validate_builtin(manifests)
    return findings + validate_custom(custom)


def _finding(manifest: Manifest, problem: str) -> Finding:
    return Finding(manifest.get("kind", "?"), manifest.get("metadata", {}).get("name", "?"), problem)
