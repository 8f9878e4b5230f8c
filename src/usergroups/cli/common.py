"""What the commands of :mod:`usergroups.cli.main` and :mod:`usergroups.cli.serve` share:
the one-line error handling and the options that say where the data comes from.

Kept apart from ``main`` so ``serve`` can declare its commands at import time without a
circular import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from usergroups.errors import UserGroupsError

F = TypeVar("F", bound=Callable[..., Any])


def _fail_cleanly(func: F) -> F:
    """Turn library errors into one line on stderr and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserGroupsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


_INPUT_OPTIONS = [
    click.option("--dataset", "dataset_name", help="A registered dataset, e.g. ml-100k."),
    click.option("--interactions", type=click.Path(dir_okay=False), help="Interactions file."),
    click.option("--texts", type=click.Path(dir_okay=False), help="User texts (reviews) file."),
    click.option("--items", type=click.Path(dir_okay=False), help="Item metadata file."),
    click.option("--users", type=click.Path(dir_okay=False), help="User attributes file."),
    click.option(
        "--map",
        "mapping",
        default=None,
        help="Column mapping OURS=THEIRS,..., e.g. user_id=reviewerID",
    ),
    click.option("--encoding", default=None, help="Text encoding of the files, e.g. latin-1."),
    click.option(
        "--on-bad-lines",
        type=click.Choice(["error", "skip"]),
        default="error",
        show_default=True,
        help="Unparseable lines: stop with an error, or skip and count them.",
    ),
    click.option("--data-dir", type=click.Path(file_okay=False), help="Where datasets live."),
]


def _input_options(func: F) -> F:
    """The options that say where the data comes from (shared by discover and evaluate)."""
    for option in reversed(_INPUT_OPTIONS):
        func = option(func)
    return func


def _load_input(
    dataset_name: str | None,
    interactions: str | None,
    texts: str | None,
    items: str | None,
    users: str | None,
    mapping: str | None,
    encoding: str | None,
    on_bad_lines: str,
    data_dir: str | None,
) -> Any:
    """A registered dataset or the given files, as a Dataset."""
    from usergroups import datasets

    if dataset_name:
        return datasets.load_dataset(dataset_name, data_dir=data_dir)
    return datasets.load_files(
        interactions=interactions,
        texts=texts,
        items=items,
        users=users,
        mapping=datasets.parse_mapping(mapping) if mapping else None,
        encoding=encoding,
        on_bad_lines=on_bad_lines,  # type: ignore[arg-type]
    )
