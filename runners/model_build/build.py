"""Build each registry row's artifact from its lock entry, or keep the cached one when nothing changed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.model_build.env import (
    REQUIREMENTS,
    ModelBuildError,
    build_python,
    cache_root,
    extract,
    fetch,
    run,
    sha256_file,
)
from transforms.model_registry import REPO_ROOT, load_registry, lock_key
from transforms.settings import Settings

LOCK_FILE = REPO_ROOT / "models" / "models.lock.json"
RECIPE_COMMON = REPO_ROOT / "models" / "recipes" / "_common.py"
STAMP = "build.json"


@dataclass(frozen=True)
class BuildResult:
    key: str
    status: str  # "cached" (store up to date), "copied" (from the user-level cache) or "built"
    seconds: float
    directory: Path


def load_lock() -> dict[str, Any]:
    return json.loads(LOCK_FILE.read_text())


def recipe_hash(entry: dict[str, Any]) -> str:
    """What a build depends on: the recipe, the shared recipe code, the pinned tools and the sources."""
    digest = hashlib.sha256()
    for path in (REPO_ROOT / entry["recipe"], RECIPE_COMMON, REQUIREMENTS):
        digest.update(path.read_bytes())
    digest.update(json.dumps([(s["package"], s["version"], s["sha256"]) for s in entry["sources"]]).encode())
    return digest.hexdigest()


def is_cached(directory: Path, entry: dict[str, Any], wanted_hash: str) -> bool:
    """Fresh when the stamp names the same recipe hash and every file still has the locked sha256."""
    stamp = directory / STAMP
    if not entry["artifacts"] or not stamp.exists():
        return False
    if json.loads(stamp.read_text()).get("recipe_hash") != wanted_hash:
        return False
    return all(
        (directory / name).exists() and sha256_file(directory / name) == meta["sha256"]
        for name, meta in entry["artifacts"].items()
    )


def copy_tree(src: Path, dest: Path) -> None:
    """Replace dest with a copy of src (through a temporary sibling, so a crash leaves no half copy)."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def build_one(key: str, entry: dict[str, Any], directory: Path, update_lock: bool) -> None:
    python = build_python()
    with tempfile.TemporaryDirectory(prefix="imgrec-build-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        for source in entry["sources"]:
            extract(fetch(source, python), source["extract"], src)
        env = {**os.environ, "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
        run([str(python), str(REPO_ROOT / entry["recipe"]), "--src", str(src), "--out", str(out)], env=env)
        built = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in sorted(out.iterdir())}
        if entry["artifacts"] and built != entry["artifacts"] and not update_lock:
            raise ModelBuildError(
                f"{key}: the build produced different files than models/models.lock.json records.\n"
                f"  locked: {json.dumps(entry['artifacts'])}\n  built:  {json.dumps(built)}\n"
                "A recipe, tool or source changed. If that is intended, rerun with --update-lock and commit the lock."
            )
        if not entry["artifacts"] and not update_lock:
            raise ModelBuildError(f"{key}: no artifacts locked yet; run `imgrec models build --update-lock`.")
        entry["artifacts"] = built
        (out / STAMP).write_text(json.dumps({"recipe_hash": recipe_hash(entry), "artifacts": built}, indent=1))
        shutil.rmtree(directory, ignore_errors=True)
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(out, directory)


def build_models(settings: Settings, update_lock: bool = False, only: list[str] | None = None) -> list[BuildResult]:
    """Build (or keep) every registry row's artifact in the model store; raise ModelBuildError on a lock mismatch."""
    lock = load_lock()
    results = []
    for model in load_registry():
        key = lock_key(model)
        if only and model.model_id not in only:
            continue
        if key not in lock:
            raise ModelBuildError(f"{key}: registry row without an entry in models/models.lock.json")
        entry = lock[key]
        directory = model.artifact_path(settings.resolved_model_store).parent
        started = time.perf_counter()
        wanted = recipe_hash(entry)
        # A fresh clone (CI) has an empty store but the same recipes: reuse the user-level copy.
        shared = cache_root() / "artifacts" / key / wanted[:16]
        status = "cached"
        if update_lock or not is_cached(directory, entry, wanted):
            if not update_lock and is_cached(shared, entry, wanted):
                copy_tree(shared, directory)
                status = "copied"
            else:
                build_one(key, entry, directory, update_lock)
                copy_tree(directory, shared)
                status = "built"
        results.append(BuildResult(key, status, time.perf_counter() - started, directory))
    if update_lock:
        LOCK_FILE.write_text(json.dumps(lock, indent=2) + "\n")
    return results
