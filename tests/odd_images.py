"""A corpus of odd and broken image files a user might send: Pillow's own test images (about 1,000 files in 60
formats: fuzzer crashers, truncated and corrupt files, 16-bit, CMYK, palette with transparency, animations,
unimplemented variants), taken from the source distribution on PyPI of the Pillow installed here.

Fetched once into `$XDG_CACHE_HOME/imgrec/odd-images/pillow-<version>/` (default ~/.cache), which survives clean
clones; `python -m tests.odd_images` fetches it ahead of a test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import PIL

MEMBER_DIR = "/Tests/images/"


def corpus_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "imgrec" / "odd-images" / f"pillow-{PIL.__version__}"


def odd_images() -> list[Path]:
    """Every non-empty file of the corpus, fetched first if it is not cached yet."""
    dest = corpus_dir()
    if not (dest / ".complete").exists():
        fetch(dest)
    return sorted(p for p in dest.rglob("*") if p.is_file() and p.name != ".complete" and p.stat().st_size)


def fetch(dest: Path) -> None:
    """Download the Pillow sdist (pip, no build) and keep its test images."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp,
               f"pillow=={PIL.__version__}"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        (sdist,) = Path(tmp).glob("pillow-*.tar.gz")
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and MEMBER_DIR in m.name]
            for m in members:
                m.name = m.name.split(MEMBER_DIR, 1)[1]
            tar.extractall(dest, members=members, filter="data")
    (dest / ".complete").write_text(f"{len(members)} files\n")


if __name__ == "__main__":
    print(f"{len(odd_images())} odd images in {corpus_dir()}")
