"""usergroups: discover groups of users for recommender systems with pretrained language models.

>>> from usergroups import GroupDiscovery, DiscoveryConfig
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset, build_dataset
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
    from usergroups.fitted import FittedState
    from usergroups.pipeline import GroupDiscovery


def __getattr__(name: str) -> Any:
    # the pipeline pulls in scikit-learn; keep `import usergroups` fast
    if name == "GroupDiscovery":
        from usergroups.pipeline import GroupDiscovery

        return GroupDiscovery
    if name == "FittedState":
        from usergroups.fitted import FittedState

        return FittedState
    raise AttributeError(f"module 'usergroups' has no attribute {name!r}")
