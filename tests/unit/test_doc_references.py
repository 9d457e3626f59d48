"""Comments and docs name only files that are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from transforms.settings import REPO_ROOT

TOP = ("api", "transforms", "pipelines", "runners", "tests", "models", "benchmarks", ".ci")
# A path under one of the repository's folders, or a Markdown document; a name followed by *, { or a backslash
# is a pattern, not a file.
REFERENCE = re.compile(rf"(?<![\w/.-])((?:{'|'.join(map(re.escape, TOP))})/[\w./-]*[\w/]|[\w-]+\.md)\b(?![*{{\\])")
SKIP = {".venv", "var", "node_modules", "__pycache__", ".git", ".pytest_cache", ".ruff_cache"}
TEXT = (".py", ".md", ".toml", ".json", ".txt", ".xml", ".properties", ".pbtxt", ".mako")
# Paths inside a registry package the model build unpacks, not in this repository.
OUTSIDE = {"models/nanodet.json"}


def repository_files() -> list[Path]:
    """The tree without what git ignores (environments, build output, data)."""
    return [
        path
        for path in REPO_ROOT.rglob("*")
        if path.is_file()
        and not any(part in SKIP or part.endswith(".egg-info") for part in path.relative_to(REPO_ROOT).parts)
    ]


def test_every_named_file_exists() -> None:
    files = repository_files()
    names = {path.name for path in files}
    missing = []
    for path in files:
        if path.suffix not in TEXT and path.name != "Makefile":
            continue
        for ref in REFERENCE.findall(path.read_text(errors="replace")):
            target = ref.rstrip("/.")
            found = (REPO_ROOT / target).exists() if "/" in target else target in names
            if not found and target not in OUTSIDE:
                missing.append(f"{path.relative_to(REPO_ROOT)}: {ref}")
    assert missing == []
