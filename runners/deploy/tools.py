"""Tools of the deployment checks, each installed once and cached: helm and Beam's Prism runner (built from the Go
module proxy) and the npm packages that carry the KEDA and Flink CRD schemas (from the committed package-lock)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from runners.stack.install import apt_install
from transforms.settings import REPO_ROOT

HELM_VERSION = "v3.22.0"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
# Beam's portable runner, at the release of the installed apache-beam (its own download reaches outside).
PRISM_VERSION = "v2.61.0"
PRISM_MODULE = "github.com/apache/beam/sdks/v2/go/cmd/prism"
VALIDATOR_DIR = REPO_ROOT / "deploy" / "validate"
GO_FALLBACK = Path("/usr/local/go/bin/go")


class ToolError(RuntimeError):
    """A tool the chart's validation needs is missing and cannot be installed here."""


def helm_path(cache_dir: Path) -> Path:
    """Where the pinned helm binary lives."""
    return cache_dir / f"helm-{HELM_VERSION}" / "helm"


def prism_path(cache_dir: Path) -> Path:
    """Where the pinned Prism runner binary lives."""
    return cache_dir / f"prism-{PRISM_VERSION}" / "prism"


def ensure_helm(cache_dir: Path, say: Callable[[str], None] = print) -> Path:
    """helm at HELM_VERSION, built with `go install` on first use (a few minutes on 2 cores), then cached."""
    return _go_install(f"{HELM_MODULE}@{HELM_VERSION}", helm_path(cache_dir), say)


def ensure_prism(cache_dir: Path, say: Callable[[str], None] = print) -> Path:
    """Beam's Prism runner at PRISM_VERSION, built with `go install` on first use, then cached."""
    return _go_install(f"{PRISM_MODULE}@{PRISM_VERSION}", prism_path(cache_dir), say)


def _go_install(module: str, binary: Path, say: Callable[[str], None]) -> Path:
    if binary.exists():
        say(f"{module}: cached at {binary}")
        return binary
    go = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.exists() else None)
    if go is None:
        raise ToolError(f"Go is needed once to build {module} from the Go module proxy (https://go.dev/dl/)")
    say(f"{module}: building from the Go module proxy into {binary.parent}")
    # Built into a scratch folder and moved: an interrupted build never looks cached.
    scratch = binary.parent / "bin.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    env = {**os.environ, "GOBIN": str(scratch), "CGO_ENABLED": "0"}
    subprocess.run([go, "install", module], check=True, env=env)
    (scratch / binary.name).rename(binary)
    shutil.rmtree(scratch, ignore_errors=True)
    return binary


def _lock_digest() -> str:
    return hashlib.sha256((VALIDATOR_DIR / "package-lock.json").read_bytes()).hexdigest()


def ensure_validator_packages(say: Callable[[str], None] = print) -> Path:
    """`npm ci` in deploy/validate when node_modules does not match the committed package-lock.json."""
    stamp = VALIDATOR_DIR / "node_modules" / ".imgrec-lock.sha256"
    digest = _lock_digest()
    if stamp.exists() and stamp.read_text() == digest:
        say("CRD schema packages (npm): installed")
        return VALIDATOR_DIR
    if shutil.which("npm") is None:
        apt_install(["nodejs", "npm"], say)
    say("CRD schema packages (npm): npm ci")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=VALIDATOR_DIR, check=True)
    stamp.write_text(digest)
    return VALIDATOR_DIR


def install_tools(cache_dir: Path, say: Callable[[str], None] = print) -> None:
    """Everything the chart's validation and the backfill's Prism runs need; idempotent."""
    ensure_helm(cache_dir, say)
    ensure_prism(cache_dir, say)
    ensure_validator_packages(say)
