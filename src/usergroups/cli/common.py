"""What the commands of :mod:`usergroups.cli.main` and :mod:`usergroups.cli.serve` share:
the one-line error handling and the options that say where the data comes from.

Kept apart from ``main`` so ``serve`` can declare its commands at import time without a
circular import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import click

from usergroups.datasets import BadLinePolicy, DataSource, SourceKeys
from usergroups.errors import ConfigError, UserGroupsError

if TYPE_CHECKING:
    from usergroups.data.model import Dataset

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


_INPUT_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "dataset_name": (("--dataset",), {"help": "A registered dataset, e.g. ml-100k."}),
    "interactions": (
        ("--interactions",),
        {"type": click.Path(dir_okay=False), "help": "Interactions file."},
    ),
    "texts": (
        ("--texts",),
        {"type": click.Path(dir_okay=False), "help": "User texts (reviews) file."},
    ),
    "items": (("--items",), {"type": click.Path(dir_okay=False), "help": "Item metadata file."}),
    "users": (("--users",), {"type": click.Path(dir_okay=False), "help": "User attributes file."}),
    "mapping": (("--map",), {"help": "Column mapping OURS=THEIRS,..., e.g. user_id=reviewerID"}),
    "encoding": (("--encoding",), {"help": "Text encoding of the files, e.g. latin-1."}),
    "on_bad_lines": (
        ("--on-bad-lines",),
        {
            "type": click.Choice(list(get_args(BadLinePolicy))),
            "show_default": True,
            "help": "Unparseable lines: stop with an error, or skip and count them.",
        },
    ),
    "data_dir": (
        ("--data-dir",),
        {"type": click.Path(file_okay=False), "help": "Where datasets live."},
    ),
}
"""The command-line option of each :class:`~usergroups.datasets.DataSource` field: its
flag(s) and click attributes; the name and the default are the field's."""


@dataclass(frozen=True)
class InputSpec(DataSource):
    """Where a command's data comes from, as the command line spells it: a
    :class:`~usergroups.datasets.DataSource` whose fields are the options every
    data-reading command takes (:func:`_input_options`), and whose check is a usage error.

    >>> InputSpec(texts="reviews.csv").files
    ['reviews.csv']
    """

    keys = SourceKeys("--dataset", "--interactions/--texts", equals=" ")

    def check(self) -> None:
        """One source, not both and not none; else a usage error (exit code 2)."""
        try:
            super().check()
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None


def _input_option(name: str) -> Callable[[F], F]:
    """The click option of the :class:`InputSpec` field ``name``."""
    spec = next(f for f in fields(InputSpec) if f.name == name)
    decls, attrs = _INPUT_OPTIONS[name]
    return click.option(*decls, spec.name, default=spec.default, **attrs)


def _input_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the input options to a command and hand it their values as one
    ``source: InputSpec`` keyword argument (used by every command that reads data)."""
    names = [f.name for f in fields(InputSpec)]

    @wraps(func)
    def with_source(*args: Any, **kwargs: Any) -> Any:
        source = InputSpec(**{name: kwargs.pop(name) for name in names})
        return func(*args, source=source, **kwargs)

    # a list of its own: wraps() shared the wrapped function's
    with_source.__click_params__ = list(getattr(func, "__click_params__", []))  # type: ignore[attr-defined]
    for name in reversed(names):
        with_source = _input_option(name)(with_source)
    return with_source


def _load_input(source: InputSpec) -> Dataset:
    """A registered dataset or the given files, as a Dataset."""
    return source.load()
