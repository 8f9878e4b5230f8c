"""Every domain error the library raises, in one hierarchy.

Catch :class:`UserGroupsError` to handle all of them. Messages say what is wrong,
what was received and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DataWarning",
    "DatasetNotFoundError",
    "DownloadError",
    "EventConflictError",
    "EventStoreError",
    "LabelingError",
    "LabelingWarning",
    "MissingDependencyError",
    "ModelDirectoryError",
    "ModelIntegrityError",
    "NotFittedError",
    "UnknownIdError",
    "UserGroupsError",
    "UserGroupsWarning",
]


class UserGroupsError(Exception):
    """Base class of every error raised by usergroups."""


class DataError(UserGroupsError, ValueError):
    """Input data is malformed: missing columns, wrong types, unparseable lines, empty files."""


class DatasetNotFoundError(UserGroupsError, FileNotFoundError):
    """A named dataset's files are not in the data directory."""


class DownloadError(UserGroupsError, OSError):
    """A dataset could not be downloaded (network, HTTP status, timeout)."""


class ConfigError(UserGroupsError, ValueError):
    """A configuration value is invalid."""


class NotFittedError(UserGroupsError, AttributeError):
    """A method needs a fitted estimator."""


class UnknownIdError(UserGroupsError, KeyError):
    """A user or item id is not in the model's vocabulary."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelDirectoryError(UserGroupsError, OSError):
    """A model directory is missing, incomplete or written by an incompatible version."""


class ModelIntegrityError(ModelDirectoryError, DataError):
    """A model directory's file is damaged: its checksum, size, type, shape or values are
    not what was written (a truncated copy, a flipped bit, a NaN, a label out of range)."""


class MissingDependencyError(UserGroupsError, ImportError):
    """An optional dependency is not installed."""


class LabelingError(UserGroupsError, RuntimeError):
    """An LLM endpoint gave no usable label (timeout, HTTP error, malformed answer)."""


class EventStoreError(UserGroupsError, OSError):
    """The event store cannot be opened, read or written."""


class EventConflictError(UserGroupsError, ValueError):
    """An event id was stored before with different content."""


class UserGroupsWarning(UserWarning):
    """Base class of every warning issued by usergroups."""


class DataWarning(UserGroupsWarning):
    """Input data is usable but suspicious, e.g. a header repeating a column name."""


class LabelingWarning(UserGroupsWarning):
    """LLM labelling failed for a group; its keyword label is used instead."""
