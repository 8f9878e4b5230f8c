"""usergroups: discover groups of users for recommender systems with pretrained language models.

>>> from usergroups import GroupDiscovery, DiscoveryConfig
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from usergroups.errors import DataError, UserGroupsError

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "Dataset",
    "DiscoveryConfig",
    "FittedState",
    "GroupDiscovery",
    "UserGroupsError",
    "__version__",
    "build_dataset",
]

if TYPE_CHECKING:
    from usergroups.config import DiscoveryConfig
    from usergroups.data import Dataset, build_dataset
    from usergroups.fitted import FittedState
    from usergroups.pipeline import GroupDiscovery

_LAZY = {
    "DiscoveryConfig": "usergroups.config",
    "Dataset": "usergroups.data",
    "build_dataset": "usergroups.data",
    "FittedState": "usergroups.fitted",
    "GroupDiscovery": "usergroups.pipeline",
}
"""Public names imported on first use (PEP 562), so `import usergroups` and the CLI's
start stay cheap (issue 25): the data model pulls in pandas, the config pydantic, the
pipeline scipy; the errors are plain classes."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'usergroups' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
