"""Issue 21: scikit-learn's own estimator checks, run over every group clusterer.

Our clusterers say they are scikit-learn estimators; ``parametrize_with_checks`` holds them
to it (``clone``, ``get_params``, fit/predict on edge-case inputs, error types and messages).
A check we deliberately fail is listed in ``EXPECTED_FAILED`` with the reason.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from sklearn.utils.estimator_checks import parametrize_with_checks

from usergroups.clustering import (
    AgglomerativeGroups,
    FaissKMeansGroups,
    HDBSCANGroups,
    KMeansGroups,
    MiniBatchKMeansGroups,
)

ESTIMATORS: list[Any] = [
    KMeansGroups(n_groups=3, n_init=2, random_state=0),
    KMeansGroups(k_max=4, n_init=2, random_state=0),  # the auto-K search
    MiniBatchKMeansGroups(n_groups=3, n_init=2, random_state=0),
    AgglomerativeGroups(n_groups=3, random_state=0),
    HDBSCANGroups(random_state=0),
]
if importlib.util.find_spec("faiss") is not None:  # the `fast` extra
    ESTIMATORS.append(FaissKMeansGroups(n_groups=3, n_init=2, random_state=0))

# none today; add {"ClassName": {"check_name": "why"}} only with the reason
EXPECTED_FAILED: dict[str, dict[str, str]] = {}


def _expected_failed_checks(estimator: Any) -> dict[str, str]:
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_clusterer_passes_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)
