"""A component's environment reaches supervisord intact, whatever characters its values hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from supervisor.datatypes import dict_of_key_value_pairs
from supervisor.options import expand

from runners.stack.supervisor import Program
from transforms.settings import REPO_ROOT

ENV = {
    "IMGREC_FETCH_ALLOW_HOSTS": '["127.0.0.1"]',  # JSON: double quotes inside
    "PGOPTIONS": "-c statement_timeout=15000",
    "ODD": r"50% of a\b, c=d 'e' f",
    "EMPTY": "",
}


def parsed_environment(program: Program) -> dict[str, str]:
    """The environment as supervisord reads it back from the program's section."""
    line = next(line for line in program.config().splitlines() if line.startswith("environment="))
    return dict_of_key_value_pairs(expand(line.removeprefix("environment="), {}, "environment"))


def test_every_value_round_trips_through_supervisord_parsing() -> None:
    assert parsed_environment(Program("api", ["true"], Path("/tmp/api.log"), ENV)) == ENV


@pytest.mark.parametrize("value", ["both \" and '", '"leading quote', "trailing quote'"])
def test_a_value_supervisord_would_change_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        Program("api", ["true"], Path("/tmp/api.log"), {"X": value}).config()


def test_a_program_run_as_another_user_starts_outside_the_checkout() -> None:
    def directory(program: Program) -> str:
        return next(line for line in program.config().splitlines() if line.startswith("directory="))

    assert directory(Program("postgres", ["true"], Path("/tmp/pg.log"), user="postgres")) == "directory=/"
    assert directory(Program("api", ["true"], Path("/tmp/api.log"))) == f"directory={REPO_ROOT}"
