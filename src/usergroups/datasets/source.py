"""Where the data is: a registered dataset, or files read with one column mapping.

One description for every front end that reads data: the CLI's input options
(``usergroups.cli.common.InputSpec``) and the service's ``[refit]`` settings are this
class's fields, checked by one rule and read by one loader. The module imports no heavy
library, so the CLI can declare its options from it at start.

>>> source = DataSource(texts="reviews.csv", mapping="user_id=reviewerID")
>>> source.files
['reviews.csv']
>>> DataSource(dataset_name="ml-100k", texts="reviews.csv").check()
Traceback (most recent call last):
...
usergroups.errors.ConfigError: pass either dataset_name or interactions/texts, not both
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from usergroups.errors import ConfigError

if TYPE_CHECKING:
    from usergroups.data.model import Dataset

__all__ = ["BadLinePolicy", "DataSource", "SourceKeys"]

BadLinePolicy = Literal["error", "skip"]
"""What a reader does with an unparseable line: stop with an error, or skip and count it."""


@dataclass(frozen=True)
class SourceKeys:
    """How a front end spells the keys that name the data, for :meth:`DataSource.check`'s
    messages: ``{verb} either {dataset} or {files}, not both`` and
    ``{verb} {dataset}{equals}NAME or {files}{equals}FILES``.

    >>> SourceKeys("--dataset", "--interactions/--texts", equals=" ").none
    'pass --dataset NAME or --interactions/--texts FILES'
    """

    dataset: str = "dataset_name"
    files: str = "interactions/texts"
    verb: str = "pass"
    equals: str = "="

    @property
    def both(self) -> str:
        """The message for a dataset and files together."""
        return f"{self.verb} either {self.dataset} or {self.files}, not both"

    @property
    def none(self) -> str:
        """The message for neither a dataset nor files."""
        return f"{self.verb} {self.dataset}{self.equals}NAME or {self.files}{self.equals}FILES"


@dataclass(frozen=True)
class DataSource:
    """A registered dataset, or up to four files read with one column mapping.

    Parameters
    ----------
    dataset_name : str, optional
        A registered dataset (see :func:`~usergroups.datasets.list_datasets`), read from
        ``data_dir``. Excludes the files.
    interactions, texts, items, users : str, optional
        Files as :func:`~usergroups.datasets.load_files` reads them; ``interactions`` or
        ``texts`` is needed.
    mapping : str, optional
        Column mapping ``OURS=THEIRS,...``, e.g. ``"user_id=reviewerID,item_id=asin"``.
    encoding : str, optional
        Text encoding of the files, e.g. ``"latin-1"``.
    on_bad_lines : {'error', 'skip'}
        Unparseable lines in the files: stop with an error, or skip and count them.
    data_dir : str, optional
        Where registered datasets live; default ``$USERGROUPS_DATA``.

    Examples
    --------
    >>> ds = DataSource(dataset_name="ml-100k").load()  # doctest: +SKIP
    """

    keys: ClassVar[SourceKeys] = SourceKeys()
    """How :meth:`check`'s messages name the keys; front ends spell them their way."""

    dataset_name: str | None = None
    interactions: str | None = None
    texts: str | None = None
    items: str | None = None
    users: str | None = None
    mapping: str | None = None
    encoding: str | None = None
    on_bad_lines: BadLinePolicy = "error"
    data_dir: str | None = None

    @property
    def files(self) -> list[str]:
        """The files given, in field order (an output folder must not hold them)."""
        return [f for f in (self.interactions, self.texts, self.items, self.users) if f]

    @property
    def names_data(self) -> bool:
        """Whether a dataset or the interactions or texts are given."""
        return bool(self.dataset_name or self.interactions or self.texts)

    def check(self) -> None:
        """Raise :class:`~usergroups.errors.ConfigError` unless exactly one source is
        given: a dataset, or interactions and/or texts (with items and users)."""
        if self.dataset_name and (self.interactions or self.texts):
            raise ConfigError(self.keys.both)
        if not self.names_data:
            raise ConfigError(self.keys.none)

    def load(self) -> Dataset:
        """Check, then read the dataset or the files.

        Returns
        -------
        Dataset
            With ``dataset.report`` listing what the reading skipped or dropped.
        """
        from usergroups.datasets.readers import load_files
        from usergroups.datasets.registry import load_dataset

        self.check()
        if self.dataset_name:
            return load_dataset(self.dataset_name, data_dir=self.data_dir)
        return load_files(
            interactions=self.interactions,
            texts=self.texts,
            items=self.items,
            users=self.users,
            mapping=self.mapping or None,
            encoding=self.encoding,
            on_bad_lines=self.on_bad_lines,
        )
