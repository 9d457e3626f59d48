"""The unit layer's own guard: starting a process fails the test, and settings see no built model."""

from __future__ import annotations

import subprocess

import pytest

from tests.unit.conftest import ProcessStarted
from transforms.settings import Settings


def test_starting_a_process_fails_the_test() -> None:
    with pytest.raises(ProcessStarted, match="starts no process"):
        subprocess.run(["redis-server", "--version"], check=False)


def test_settings_from_the_environment_see_an_empty_model_store() -> None:
    store = Settings().resolved_model_store
    assert store.is_dir() and not any(store.iterdir())
