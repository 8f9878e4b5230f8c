"""Evaluation: the protocols of ``DESIGN.md``, ranking and clustering metrics, baselines.

Splits (:func:`warm_split`, :func:`cold_split`, :func:`random_split`,
:func:`temporal_split`) turn a :class:`~usergroups.data.Dataset` into a
:class:`Split`; recommenders (:class:`PopularityRecommender`, item-kNN, EASE, ALS,
BPR, group popularity) are fitted on ``split.train``; :func:`evaluate_recommender`
masks seen items, ranks every other item and averages the metrics of
:mod:`usergroups.evaluation.metrics`. Clustering metrics and :func:`group_lift`
judge the groups themselves. :func:`run_protocols` runs the protocols end to end on any
:class:`GroupModel` beside the baselines (:mod:`usergroups.evaluation.protocols`).

Examples
--------
>>> import pandas as pd
>>> from usergroups.data import build_dataset
>>> from usergroups.evaluation import PopularityRecommender, evaluate_recommender, warm_split
>>> log = pd.DataFrame({"user_id": list("aaabbbccc"), "item_id": list("xyzxyzxyw"),
...                     "timestamp": [1, 2, 3] * 3})
>>> split = warm_split(build_dataset(log))
>>> rec = PopularityRecommender().fit(split.train)
>>> round(evaluate_recommender(rec, split, ks=(1,))["HR@1"], 3)  # ties: lower index
0.333
"""

from __future__ import annotations

from usergroups.evaluation.baselines import (
    BASELINES,
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    GroupPopularityRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
    make_baseline,
)
from usergroups.evaluation.clustering import (
    calinski_harabasz,
    davies_bouldin,
    group_lift,
    group_size_summary,
    inter_group_separation,
    intra_group_similarity,
    noise_share,
    silhouette,
    stability,
)
from usergroups.evaluation.evaluate import evaluate_recommender, evaluate_scores
from usergroups.evaluation.metrics import (
    average_popularity,
    average_precision,
    catalogue_coverage,
    hit_rate,
    intra_list_diversity,
    ndcg,
    precision,
    recall,
    reciprocal_rank,
    recommended_items,
    topk,
)
from usergroups.evaluation.protocols import (
    FittedGroups,
    GroupModel,
    GroupScorer,
    run_protocols,
)
from usergroups.evaluation.splits import (
    Split,
    SplitProtocol,
    cold_split,
    random_split,
    temporal_split,
    warm_split,
)

__all__ = [
    "BASELINES",
    "ALSRecommender",
    "BPRRecommender",
    "EASERecommender",
    "FittedGroups",
    "GroupModel",
    "GroupPopularityRecommender",
    "GroupScorer",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "Split",
    "SplitProtocol",
    "average_popularity",
    "average_precision",
    "calinski_harabasz",
    "catalogue_coverage",
    "cold_split",
    "davies_bouldin",
    "evaluate_recommender",
    "evaluate_scores",
    "group_lift",
    "group_size_summary",
    "hit_rate",
    "inter_group_separation",
    "intra_group_similarity",
    "intra_list_diversity",
    "make_baseline",
    "ndcg",
    "noise_share",
    "precision",
    "random_split",
    "recall",
    "reciprocal_rank",
    "recommended_items",
    "run_protocols",
    "silhouette",
    "stability",
    "temporal_split",
    "topk",
    "warm_split",
]
