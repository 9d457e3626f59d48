"""The unit layer runs without services, built models or child processes; each test checks it for itself.

Settings read from the environment point at an empty model store and a temporary var/, and starting a process
(any `subprocess.Popen`: a service, a CLI, a model build) fails the test that tried.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.fakes import TINY_LABELS, FakeBackend
from transforms.composition import build_ports, migrate
from transforms.model_registry import load_registry
from transforms.ports import Ports
from transforms.settings import Settings


class ProcessStarted(AssertionError):
    """A unit test tried to start a process."""


@pytest.fixture(autouse=True)
def no_services_no_models(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root: Path = tmp_path_factory.mktemp("unit-env")
    (root / "models").mkdir()
    monkeypatch.setenv("IMGREC_VAR_DIR", str(root / "var"))
    monkeypatch.setenv("IMGREC_MODEL_STORE", str(root / "models"))

    def refuse(self: subprocess.Popen, args: object, *_: object, **__: object) -> None:
        self._child_created = False  # what Popen.__del__ looks at
        raise ProcessStarted(f"a unit test starts no process (service, CLI or build): {args!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings on a temporary var/ whose model store holds only tiny-rgb's labels (no model file)."""
    model_store = tmp_path / "models"
    labels = model_store / "tiny-rgb" / "1" / "labels.json"
    labels.parent.mkdir(parents=True)
    labels.write_text(json.dumps(TINY_LABELS))
    return Settings(var_dir=tmp_path / "var", model_store=model_store, _env_file=None)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per session, copied by each test that needs one."""
    path = tmp_path_factory.mktemp("schema") / "imgrec.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def ports(settings: Settings, migrated_sqlite: Path) -> Iterator[Ports]:
    """The embedded ports (SQLite, in-process cache and routes, file blobs) with the fake back end."""
    settings.var_dir.mkdir(parents=True)
    shutil.copyfile(migrated_sqlite, settings.var_dir / "imgrec.db")
    built = build_ports(settings)
    built.store.registry.seed(load_registry())
    built.backend.close()
    built.backend = FakeBackend()
    yield built
    built.close()
