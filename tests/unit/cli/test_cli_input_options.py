"""Every command that reads data takes the same input options, declared once (issue 21).

The options that say where the data is (``--dataset``, the files, ``--map``, ...) are the
fields of :class:`~usergroups.cli.common.InputSpec`; these tests read the click commands
themselves, so a command that declares its own copy, or drops one, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest

from usergroups.cli.common import InputSpec
from usergroups.cli.main import cli, main

INPUT_NAMES = [f.name for f in fields(InputSpec)]
INPUT_FLAGS = [
    "--dataset",
    "--interactions",
    "--texts",
    "--items",
    "--users",
    "--map",
    "--encoding",
    "--on-bad-lines",
    "--data-dir",
]
SOURCE_FLAGS = set(INPUT_FLAGS) - {"--data-dir"}
"""Flags that name data to read; ``--data-dir`` alone (``datasets list``) reads none.
Flags, not parameter names: ``assign --text`` is also called ``texts``."""


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def _input_params(command: click.Command) -> list[dict[str, Any]]:
    return [p.to_info_dict() for p in command.params if set(p.opts) & set(INPUT_FLAGS)]


def _readers() -> dict[str, click.Command]:
    return {
        name: command
        for name, command in _commands(cli)
        if any(set(p.opts) & SOURCE_FLAGS for p in command.params)
    }


def test_issue21_every_data_reading_command_takes_the_same_input_options() -> None:
    readers = _readers()
    assert {"discover", "evaluate", "refit"} <= set(readers)
    expected = _input_params(readers["discover"])
    assert [p["name"] for p in expected] == INPUT_NAMES
    assert [p["opts"] for p in expected] == [[flag] for flag in INPUT_FLAGS]
    for name, command in readers.items():
        assert _input_params(command) == expected, name


def test_issue21_input_options_are_listed_together_in_the_same_order() -> None:
    for name, command in _readers().items():
        names = [p.name for p in command.params]
        first = names.index(INPUT_NAMES[0])
        assert names[first : first + len(INPUT_NAMES)] == INPUT_NAMES, name


def test_issue21_data_dir_is_the_same_option_wherever_it_is_taken() -> None:
    data_dirs = {
        name: [p.to_info_dict() for p in command.params if "--data-dir" in p.opts]
        for name, command in _commands(cli)
    }
    taken = {name: params[0] for name, params in data_dirs.items() if params}
    assert {"discover", "datasets list", "datasets fetch", "datasets verify"} <= set(taken)
    assert all(info == taken["discover"] for info in taken.values()), taken
    assert taken["discover"]["help"] == "Where datasets live."


def test_input_spec_lists_the_given_files_in_option_order() -> None:
    spec = InputSpec(users="u.csv", texts="t.jsonl", mapping="user_id=reviewerID")
    assert spec.files == ["t.jsonl", "u.csv"]
    assert InputSpec(dataset_name="ml-100k").files == []


@pytest.mark.parametrize("command", ["discover", "evaluate", "refit"])
def test_issue21_every_data_reading_command_refuses_both_a_dataset_and_files(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``refit`` used to take --dataset and --texts together and silently ignore the files."""
    texts = tmp_path / "reviews.csv"
    texts.write_text("user_id,item_id,text\nu1,i1,guitar\n")
    model = [str(tmp_path / "model")] if command == "refit" else []
    out = ["--out", str(tmp_path / "out")] if command == "discover" else []
    code = main([command, *model, "--dataset", "ml-100k", "--texts", str(texts), *out])
    assert code == 2
    assert "pass either --dataset or --interactions/--texts, not both" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["discover", "evaluate", "refit"])
def test_every_data_reading_command_asks_for_data_when_given_none(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = [str(tmp_path / "model")] if command == "refit" else []
    out = ["--out", str(tmp_path / "out")] if command == "discover" else []
    assert main([command, *model, *out]) == 2
    assert "pass --dataset NAME or --interactions/--texts FILES" in capsys.readouterr().err
