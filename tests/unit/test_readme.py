"""The README documents every setting (service and stack) and names the two commands CI relies on."""

from __future__ import annotations

from runners.stack.settings import StackSettings
from transforms.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [f"IMGREC_{n.upper()}" for n in Settings.model_fields if f"`IMGREC_{n.upper()}`" not in README]
    missing += [
        f"IMGREC_STACK_{n.upper()}" for n in StackSettings.model_fields if f"`IMGREC_STACK_{n.upper()}`" not in README
    ]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    assert "make run" in README and "make test" in README
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
