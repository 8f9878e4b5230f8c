"""The protocols run end to end on a stand-in group model, without the pipeline.

The stand-in knows the planted groups: its users' vectors are their planted group (one-hot),
its group recommender is group popularity smoothed toward global popularity by a pseudo-count
the test chooses, and a new user goes to the group whose members' texts their text is
nearest to. Anything that offers :class:`GroupModel` and :class:`FittedGroups` can be
evaluated this way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from usergroups.config import EmbeddingConfig
from usergroups.data import Dataset, IdVocab
from usergroups.embedding import make_encoder
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation import FittedGroups, GroupModel, GroupScorer, run_protocols
from usergroups.evaluation.protocols import WARM_METRICS
from usergroups.testing import PlantedData, make_planted

N_GROUPS = 4


@dataclass
class SmoothedGroupPopularity:
    """Share of a group's members with each item, pulled toward global popularity."""

    counts: npt.NDArray[np.float64]
    sizes: npt.NDArray[np.float64]
    popularity: npt.NDArray[np.float64]
    smoothing: float

    @classmethod
    def fit(cls, seen: Any, labels: npt.ArrayLike, smoothing: float) -> SmoothedGroupPopularity:
        x = sp.csr_matrix(seen, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        n_groups = int(y.max()) + 1 if (y >= 0).any() else 0
        members = np.flatnonzero(y >= 0)
        assign = sp.csr_matrix(
            (np.ones(len(members)), (y[members], members)), shape=(n_groups, x.shape[0])
        )
        return cls(
            counts=np.asarray((assign @ x).toarray()),
            sizes=np.bincount(y[members], minlength=n_groups).astype(np.float64),
            popularity=np.asarray(x.sum(axis=0)).ravel() / max(x.shape[0], 1),
            smoothing=smoothing,
        )

    def group_scores(self, groups: npt.ArrayLike) -> npt.NDArray[np.float64]:
        g = np.asarray(groups, dtype=np.int64)
        out = np.tile(self.popularity, (len(g), 1))
        inside = (g >= 0) & (g < len(self.sizes))
        s = self.smoothing
        out[inside] = (self.counts[g[inside]] + s * self.popularity) / (
            self.sizes[g[inside], None] + s
        )
        return out


@dataclass
class PlantedFit:
    """A :class:`FittedGroups` whose groups are the planted ones."""

    user_ids_: IdVocab
    item_ids_: IdVocab
    labels_: npt.NDArray[np.int64]
    user_vectors_: npt.NDArray[np.float64]
    semantic_: npt.NDArray[np.float64]
    seen_: Any
    recommender_: SmoothedGroupPopularity
    encode: Any
    personal_: object | None = None
    cold_weight_: float = 0.0
    metrics_: dict[str, Any] = field(default_factory=lambda: {"timings": {"embedding": 0.0}})

    @property
    def n_groups_(self) -> int:
        return int(self.labels_.max()) + 1

    def user_group_scores(self, rows: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return self.recommender_.group_scores(self.labels_[np.asarray(rows)])

    def blend_scores(
        self, groups: npt.ArrayLike, seen: Any, *, group_part: Any = None
    ) -> npt.NDArray[np.float64]:
        return self.recommender_.group_scores(groups) if group_part is None else group_part

    def text_scores(self, texts: list[str]) -> npt.NDArray[np.float64]:
        vectors = _unit(np.asarray(self.encode(texts), dtype=np.float64))
        members = self.labels_ >= 0
        centroids = np.stack(
            [
                self.semantic_[members & (self.labels_ == g)].mean(axis=0)
                for g in range(self.n_groups_)
            ]
        )
        return self.recommender_.group_scores((vectors @ centroids.T).argmax(axis=1))


class PlantedModel:
    """A :class:`GroupModel` that 'fits' the planted groups of ``planted``."""

    def __init__(self, planted: PlantedData, smoothing: float) -> None:
        self.planted = planted
        self.smoothing = smoothing
        self.encoder = make_encoder(EmbeddingConfig(model="hashing", use_cache=False))

    def encode(self, texts: list[str]) -> npt.NDArray[np.float64]:
        return np.asarray(self.encoder.encode(texts), dtype=np.float64)

    def fit(self, dataset: Dataset) -> PlantedFit:
        users = dataset.user_ids.ids
        labels = self.planted.labels_for(users)
        semantic = np.zeros((len(users), self.encode(["x"]).shape[1]))
        texts = dataset.texts
        if len(texts):
            rows = dataset.user_ids.index(texts["user_id"].astype(str), what="user_id")
            np.add.at(semantic, rows, self.encode([str(t) for t in texts["text"]]))
        seen = dataset.interaction_matrix()
        return PlantedFit(
            user_ids_=dataset.user_ids,
            item_ids_=dataset.item_ids,
            labels_=labels,
            user_vectors_=np.eye(N_GROUPS)[labels],
            semantic_=_unit(semantic),
            seen_=seen,
            recommender_=SmoothedGroupPopularity.fit(seen, labels, self.smoothing),
            encode=self.encode,
        )

    def regroup(
        self, fitted: FittedGroups, n_groups: int | None, random_state: int
    ) -> npt.NDArray[np.int64]:
        from sklearn.cluster import KMeans

        k = fitted.n_groups_ if n_groups is None else n_groups
        km = KMeans(n_clusters=k, n_init=10, random_state=random_state)
        return np.asarray(km.fit(fitted.user_vectors_).labels_, dtype=np.int64)

    def group_recommender(self, fitted: FittedGroups, labels: npt.ArrayLike) -> GroupScorer:
        return SmoothedGroupPopularity.fit(fitted.seen_, labels, self.smoothing)

    def resampled_group_scores(self, fitted: FittedGroups, level: str, random_state: int) -> Any:
        # the planted groups again, counted on a random 80 % of the users
        rng = np.random.default_rng(random_state)
        n = len(fitted.labels_)
        keep = np.zeros(n, dtype=bool)
        keep[rng.choice(n, size=int(0.8 * n), replace=False)] = True
        labels = np.where(keep, fitted.labels_, -1)
        rec = SmoothedGroupPopularity.fit(fitted.seen_, labels, self.smoothing)
        return lambda rows: rec.group_scores(fitted.labels_[np.asarray(rows)])


def _unit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=200, n_groups=N_GROUPS, random_state=0)


def _run(planted: PlantedData, smoothing: float, **kwargs: Any) -> dict[str, Any]:
    model: GroupModel = PlantedModel(planted, smoothing)
    options: dict[str, Any] = {
        "baselines": ("Pop",),
        "stability_seeds": 2,
        "k_sweep": (2, N_GROUPS),
        "min_test_users": 10,
        **kwargs,
    }
    return run_protocols(planted.dataset, model, **options)


@pytest.fixture(scope="module")
def result(planted: PlantedData) -> dict[str, Any]:
    return _run(planted, smoothing=10.0)


def test_any_group_model_is_measured_beside_the_baselines(result: dict[str, Any]) -> None:
    assert set(result["methods"]) == {"Pop", "SeedRecipe", "UserGroups"}  # no personal model
    assert set(result["cold"]["methods"]) == {"Pop", "SeedRecipe", "UserGroups"}
    for metrics in (*result["methods"].values(), *result["cold"]["methods"].values()):
        assert set(metrics) <= set(WARM_METRICS)
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert result["groups"]["n_groups"] == N_GROUPS
    assert result["groups"]["stability_ari"] == pytest.approx(1.0)
    assert result["alignment"] is None
    assert "config" not in result  # the glue above the pipeline adds its own settings


def test_planted_groups_beat_popularity_warm_and_cold(result: dict[str, Any]) -> None:
    assert result["groups"]["group_lift"] > 1.5
    for section in (result["methods"], result["cold"]["methods"]):
        assert section["UserGroups"]["NDCG@10"] > section["Pop"]["NDCG@10"]


def test_issue_23_every_lift_comes_with_its_interval_and_overlap(result: dict[str, Any]) -> None:
    lift = result["groups"]["lift"]
    pop = result["methods"]["Pop"]["NDCG@10"]
    # the model's group part is what warm UserGroups ranks: its lift is that NDCG over Pop's
    assert lift["fine"]["value"] == pytest.approx(
        result["methods"]["UserGroups"]["NDCG@10"] / pop, abs=1e-3
    )
    for name in ("segments", "fine", "seed_recipe"):
        entry = lift[name]
        assert entry["low"] <= entry["value"] <= entry["high"], name
        assert entry["n_users"] == result["n_test_users"]
    # planted groups are the same in every resample: the top-10 lists barely move
    assert lift["segments"]["top10_overlap"] > 0.8
    assert lift["fine"]["top10_overlap"] > 0.8
    # and they predict: the interval lies above 1
    assert lift["segments"]["low"] > 1.0
    # over the whole ranking too, where every test user counts: a narrower interval
    for name in ("segments", "fine", "seed_recipe"):
        whole, entry = lift[name]["full_ranking"], lift[name]
        assert whole["low"] <= whole["value"] <= whole["high"], name
        assert whole["high"] - whole["low"] < entry["high"] - entry["low"], name
    assert lift["segments"]["full_ranking"]["low"] > 1.0


def test_issue_12_k_sweep_lift_is_the_ndcg_beside_it_over_pop(result: dict[str, Any]) -> None:
    pop = result["methods"]["Pop"]["NDCG@10"]
    sweep = {row["k"]: row for row in result["k_sweep"]}
    assert sorted(sweep) == [2, N_GROUPS]
    for row in sweep.values():
        assert row["Pop_NDCG@10"] == pop
        for method in ("UserGroups", "SeedRecipe"):
            assert row[f"{method}_group_lift"] == pytest.approx(row[f"{method}_NDCG@10"] / pop)
    # at the model's own K the sweep refits the same groups, so the same scorer scores the same
    assert sweep[N_GROUPS]["UserGroups_NDCG@10"] == pytest.approx(
        result["methods"]["UserGroups"]["NDCG@10"]
    )


def test_issue_12_k_sweep_uses_the_models_recommender_as_configured(
    planted: PlantedData,
) -> None:
    # smoothed this hard, the group recommender ranks like global popularity: its lift is
    # about 1, while unsmoothed group popularity of the same groups is far above 1. Before
    # issue 12 the sweep showed the unsmoothed lift beside the smoothed scorer's NDCG@10.
    out = _run(planted, smoothing=1e9, protocols=("warm",), stability_seeds=0)
    row = next(r for r in out["k_sweep"] if r["k"] == N_GROUPS)
    assert out["groups"]["group_lift"] > 1.5  # DESIGN.md's unsmoothed group lift
    assert row["UserGroups_group_lift"] == pytest.approx(1.0, abs=0.1)
    assert row["UserGroups_NDCG@10"] == pytest.approx(out["methods"]["UserGroups"]["NDCG@10"])
    assert not any(key == "group_lift" for key in row)


def test_cold_is_skipped_with_a_reason_when_too_few_users_are_held_out(
    planted: PlantedData,
) -> None:
    out = _run(planted, 10.0, protocols=("cold",), min_test_users=10_000)
    assert out["protocol"] == "cold" and "min_test_users" in out["cold"]["skipped"]
    assert math.isfinite(out["seconds"]["total"])


def test_too_few_warm_test_users_is_a_data_error(planted: PlantedData) -> None:
    with pytest.raises(DataError, match="min_test_users"):
        _run(planted, 10.0, protocols=("warm",), min_test_users=10_000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocols": ("hot",)}, "'warm', 'cold'"),
        ({"baselines": ("SVD",)}, "EASE"),
        ({"stability_seeds": 2.5}, "stability_seeds"),
        ({"random_state": None}, "random_state"),
    ],
)
def test_bad_arguments_name_the_good_ones(
    planted: PlantedData, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _run(planted, 10.0, **kwargs)


def test_reach_counts_held_out_items_item_item_methods_can_find() -> None:
    import pandas as pd

    from usergroups.data import build_dataset
    from usergroups.evaluation.protocols import reach
    from usergroups.evaluation.splits import warm_split

    # a and b share x; a's last item y was also bought by b (reachable); c's last item w
    # is bought by nobody else (not in training), d's last item v only by e, who shares
    # nothing with d (in training, not reachable)
    rows = [
        ("a", "x", 1), ("a", "z", 2), ("a", "y", 3),
        ("b", "x", 1), ("b", "y", 2), ("b", "q", 3),
        ("c", "x", 1), ("c", "z", 2), ("c", "w", 3),
        ("d", "x", 1), ("d", "q", 2), ("d", "v", 3),
        ("e", "v", 1), ("e", "u", 2),
    ]  # fmt: skip
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    split = warm_split(build_dataset(inter))
    r = reach(split)
    # test users a, b, c, d (three or more items); held out: y, q, w, v
    assert r == {"in_training": 0.75, "cooccurs": 0.5}


def test_issue_24_every_warm_method_has_a_bootstrap_interval(result: dict[str, Any]) -> None:
    intervals = result["intervals"]
    assert set(intervals) == set(result["methods"])
    for name, metrics in result["methods"].items():
        iv = intervals[name]["NDCG@10"]
        assert iv["mean"] == pytest.approx(metrics["NDCG@10"])
        assert iv["low"] <= iv["mean"] <= iv["high"] and iv["n"] == result["n_test_users"]


def test_every_method_warm_and_cold_has_an_interval_and_a_paired_ratio_to_pop(
    result: dict[str, Any],
) -> None:
    for section, n_users in ((result, result["n_test_users"]), (result["cold"], None)):
        intervals, methods = section["intervals"], section["methods"]
        assert set(intervals) == set(methods)
        pop = methods["Pop"]["NDCG@10"]
        assert "NDCG@10 ÷ Pop" not in intervals["Pop"]
        for name, metrics in methods.items():
            iv = intervals[name]["NDCG@10"]
            assert iv["mean"] == pytest.approx(metrics["NDCG@10"])
            assert iv["low"] <= iv["mean"] <= iv["high"]
            assert iv["n"] == (n_users or section["n_users"])
            if name == "Pop":
                continue
            ratio = intervals[name]["NDCG@10 ÷ Pop"]
            assert ratio["value"] == pytest.approx(metrics["NDCG@10"] / pop)
            assert ratio["low"] <= ratio["value"] <= ratio["high"]


def test_paired_ratio_interval_is_narrower_than_unpaired_on_shared_difficulty() -> None:
    from usergroups.evaluation.protocols import intervals_of

    rng = np.random.default_rng(0)
    easy = rng.random(400) < 0.2  # users any method finds: shared by both scorers
    pop = easy * 0.5 + (rng.random(400) < 0.02) * 0.3
    ours = easy * 0.6 + (rng.random(400) < 0.02) * 0.3
    out = intervals_of({"Pop": pop, "Ours": ours}, random_state=0)
    ratio = out["Ours"]["NDCG@10 ÷ Pop"]
    assert ratio["value"] == pytest.approx(ours.mean() / pop.mean())
    # the shared easy users cancel: the paired interval lies above 1, where the two
    # unpaired NDCG intervals overlap
    assert ratio["low"] > 1.0
    assert out["Ours"]["NDCG@10"]["low"] < out["Pop"]["NDCG@10"]["high"]
