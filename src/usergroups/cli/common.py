"""What the commands of :mod:`usergroups.cli.main` and :mod:`usergroups.cli.serve` share:
the one-line error handling and the options that say where the data comes from.

Kept apart from ``main`` so ``serve`` can declare its commands at import time without a
circular import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

from usergroups.errors import UserGroupsError

if TYPE_CHECKING:
    from usergroups.datasets._io import BadLinePolicy

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


def _option(*decls: str, **attrs: Any) -> dict[str, Any]:
    """An :class:`InputSpec` field's option: its flag(s) and click attributes; the name and
    the default are the field's."""
    return {"option": (decls, attrs)}


@dataclass(frozen=True)
class InputSpec:
    """Where a command's data comes from: a registered dataset, or files read with one column
    mapping. Each field declares its command-line option, so the options every data-reading
    command takes (:func:`_input_options`) and this class are one list.

    >>> InputSpec(texts="reviews.csv").files
    ['reviews.csv']
    """

    dataset_name: str | None = field(
        default=None, metadata=_option("--dataset", help="A registered dataset, e.g. ml-100k.")
    )
    interactions: str | None = field(
        default=None,
        metadata=_option(
            "--interactions", type=click.Path(dir_okay=False), help="Interactions file."
        ),
    )
    texts: str | None = field(
        default=None,
        metadata=_option(
            "--texts", type=click.Path(dir_okay=False), help="User texts (reviews) file."
        ),
    )
    items: str | None = field(
        default=None,
        metadata=_option("--items", type=click.Path(dir_okay=False), help="Item metadata file."),
    )
    users: str | None = field(
        default=None,
        metadata=_option("--users", type=click.Path(dir_okay=False), help="User attributes file."),
    )
    mapping: str | None = field(
        default=None,
        metadata=_option("--map", help="Column mapping OURS=THEIRS,..., e.g. user_id=reviewerID"),
    )
    encoding: str | None = field(
        default=None,
        metadata=_option("--encoding", help="Text encoding of the files, e.g. latin-1."),
    )
    on_bad_lines: BadLinePolicy = field(
        default="error",
        metadata=_option(
            "--on-bad-lines",
            type=click.Choice(["error", "skip"]),
            show_default=True,
            help="Unparseable lines: stop with an error, or skip and count them.",
        ),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_option(
            "--data-dir", type=click.Path(file_okay=False), help="Where datasets live."
        ),
    )

    @property
    def files(self) -> list[str]:
        """The input files given, in option order (an output folder must not hold them)."""
        return [f for f in (self.interactions, self.texts, self.items, self.users) if f]

    def check(self) -> None:
        """One source, not both and not none; else a usage error (exit code 2)."""
        if self.dataset_name and (self.interactions or self.texts):
            raise click.UsageError("pass either --dataset or --interactions/--texts, not both")
        if not self.dataset_name and not (self.interactions or self.texts):
            raise click.UsageError("pass --dataset NAME or --interactions/--texts FILES")


def _input_option(name: str) -> Callable[[F], F]:
    """The click option of the :class:`InputSpec` field ``name``."""
    spec = next(f for f in fields(InputSpec) if f.name == name)
    decls, attrs = spec.metadata["option"]
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


def _load_input(source: InputSpec) -> Any:
    """A registered dataset or the given files, as a Dataset."""
    from usergroups import datasets

    if source.dataset_name:
        return datasets.load_dataset(source.dataset_name, data_dir=source.data_dir)
    return datasets.load_files(
        interactions=source.interactions,
        texts=source.texts,
        items=source.items,
        users=source.users,
        mapping=datasets.parse_mapping(source.mapping) if source.mapping else None,
        encoding=source.encoding,
        on_bad_lines=source.on_bad_lines,
    )
