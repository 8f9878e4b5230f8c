"""GroupDiscovery end to end on planted groups, with the hashing stand-in encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.data import build_dataset
from usergroups.errors import DataError, ModelDirectoryError, NotFittedError, UnknownIdError
from usergroups.testing import PlantedData, make_planted


def _config(**clustering: object) -> DiscoveryConfig:
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing", "use_cache": False},
            "clustering": {"n_groups": 4, **clustering},
            "random_state": 0,
        }
    )


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return make_planted(n_users=240, n_groups=4, random_state=3)


@pytest.fixture(scope="module")
def fitted(planted: PlantedData) -> GroupDiscovery:
    return GroupDiscovery(_config()).fit(planted.dataset)


def test_pipeline_recovers_planted_groups(planted: PlantedData, fitted: GroupDiscovery) -> None:
    truth = planted.labels_for(fitted.user_ids_.ids)
    assert adjusted_rand_score(truth, fitted.labels_) >= 0.9


@pytest.mark.slow
def test_auto_number_of_groups_finds_the_planted_four(planted: PlantedData) -> None:
    gd = GroupDiscovery(_config(n_groups="auto", k_max=8, select="silhouette")).fit(planted.dataset)
    assert gd.n_groups_ == 4
    assert set(gd.metrics_["k_scores"]) == {str(k) for k in range(2, 9)}
    assert gd.metrics_["k_selection"] == "silhouette"


@pytest.mark.slow
def test_validation_chooses_the_planted_four(planted: PlantedData) -> None:
    gd = GroupDiscovery(_config(n_groups="auto", k_max=8)).fit(planted.dataset)
    assert gd.n_groups_ == 4
    assert gd.metrics_["k_selection"] == "validation"
    # issue 12: every integer of k_min..k_max when the range is small
    assert set(gd.metrics_["k_scores"]) == {str(k) for k in range(2, 9)}
    assert gd.metrics_["choices"]["n_groups"] == {"value": 4, "source": "validation", "reason": ""}


@pytest.mark.slow
def test_text_only_pipeline_recovers_groups(planted: PlantedData) -> None:
    cfg = _config().with_overrides({"user_vectors.behaviour": "none"})
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    truth = planted.labels_for(gd.user_ids_.ids)
    assert adjusted_rand_score(truth, gd.labels_) >= 0.9


def test_predict_places_new_users_in_their_true_group(
    planted: PlantedData, fitted: GroupDiscovery
) -> None:
    truth = planted.labels_for(fitted.user_ids_.ids)
    # map each planted group to the discovered group most of its members landed in
    mapping = {t: np.bincount(fitted.labels_[truth == t]).argmax() for t in np.unique(truth)}
    rng = np.random.default_rng(11)
    planted_groups = rng.integers(0, 4, 40)
    texts = [planted.text_for_group(int(g), rng) for g in planted_groups]
    predicted = fitted.predict(texts)
    expected = np.array([mapping[g] for g in planted_groups])
    assert (predicted == expected).mean() >= 0.9


def test_predict_proba_rows_sum_to_one(fitted: GroupDiscovery) -> None:
    proba = fitted.predict_proba(["guitar strings", "drum sticks snare"])
    assert proba.shape == (2, fitted.n_groups_)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_centroid_assignment_agrees_with_knn_on_clear_texts(planted: PlantedData) -> None:
    cfg = _config().with_overrides({"assign.method": "centroid"})
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    knn = GroupDiscovery(_config()).fit(planted.dataset)
    texts = ["guitar strings capo fret chord acoustic", "snare drum cymbal sticks kick"]
    assert gd.predict(texts).tolist() == knn.predict(texts).tolist()


def test_recommend_excludes_seen_items_and_has_n_per_user(fitted: GroupDiscovery) -> None:
    users = fitted.user_ids_.ids[:5].tolist()
    recs = fitted.recommend(users, n=7)
    assert recs.groupby("user_id").size().tolist() == [7] * 5
    seen = fitted.seen_
    for u, chunk in recs.groupby("user_id"):
        row = fitted.user_ids_.index([u])[0]
        seen_items = set(fitted.item_ids_.ids[seen[row].indices])
        assert not seen_items & set(chunk["item_id"])
        assert chunk["rank"].tolist() == list(range(1, 8))
        assert chunk["score"].is_monotonic_decreasing


def test_recommend_unknown_user_names_it(fitted: GroupDiscovery) -> None:
    with pytest.raises(UnknownIdError, match="'nobody'"):
        fitted.recommend(["nobody"])


def test_assign_returns_group_confidence_and_items(fitted: GroupDiscovery) -> None:
    out = fitted.assign(["guitar strings for my acoustic"], n=3)
    assert list(out.columns) == [
        "text",
        "group_id",
        "confidence",
        "label",
        "items",
        "titles",
        "names",
        "name_sources",
    ]
    assert 0 < out.loc[0, "confidence"] <= 1
    assert len(out.loc[0, "items"]) == 3


def test_groups_table_has_keywords_and_top_items(fitted: GroupDiscovery) -> None:
    g = fitted.groups_
    assert g["size"].sum() == 240
    assert g["size"].is_monotonic_decreasing
    assert all(len(k) > 0 for k in g["keywords"])
    assert all(len(i) > 0 for i in g["top_items"])


@pytest.mark.slow
def test_same_seed_same_groups(planted: PlantedData) -> None:
    a = GroupDiscovery(_config()).fit(planted.dataset)
    b = GroupDiscovery(_config()).fit(planted.dataset)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.user_vectors_, b.user_vectors_)


def test_save_load_round_trips_exactly(fitted: GroupDiscovery, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model")
    loaded = GroupDiscovery.load(tmp_path / "model")
    assert loaded.config == fitted.config
    assert np.array_equal(loaded.labels_, fitted.labels_)
    assert np.array_equal(loaded.user_vectors_, fitted.user_vectors_)
    assert np.array_equal(loaded.recommender_.scores_, fitted.recommender_.scores_)
    users = fitted.user_ids_.ids[:10].tolist()
    pd.testing.assert_frame_equal(loaded.recommend(users), fitted.recommend(users))
    pd.testing.assert_frame_equal(loaded.groups_, fitted.groups_)
    pd.testing.assert_frame_equal(loaded.assignments_, fitted.assignments_)
    texts = ["guitar strings", "microphone podcast"]
    assert np.array_equal(loaded.predict(texts), fitted.predict(texts))


def test_model_directory_holds_tables_readable_without_usergroups(
    fitted: GroupDiscovery, tmp_path: Path
) -> None:
    out = fitted.save(tmp_path / "m")
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "versions.json",
        "arrays.npz",
        "assignments.parquet",
        "groups.parquet",
        "recommendations.parquet",
        "items.parquet",
    } <= names
    assert not any(n.endswith((".pkl", ".pickle", ".tmp")) for n in names)
    recs = pd.read_parquet(out / "recommendations.parquet")
    assert len(recs) == 240 * 10
    with np.load(out / "arrays.npz", allow_pickle=False) as npz:
        assert npz["labels"].shape == (240,)


def test_save_replaces_an_existing_model_atomically(fitted: GroupDiscovery, tmp_path: Path) -> None:
    target = tmp_path / "m"
    fitted.save(target)
    fitted.save(target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_load_rejects_incomplete_directory(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelDirectoryError, match="missing"):
        GroupDiscovery.load(tmp_path / "half")
    with pytest.raises(ModelDirectoryError, match="does not exist"):
        GroupDiscovery.load(tmp_path / "nope")


def test_methods_need_a_fitted_model() -> None:
    with pytest.raises(NotFittedError):
        GroupDiscovery(_config()).recommend(["u1"])


def test_fit_rejects_a_dataframe() -> None:
    with pytest.raises(DataError, match="build_dataset"):
        GroupDiscovery(_config()).fit(pd.DataFrame())  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["minibatch", "agglomerative", "hdbscan"])
def test_every_clustering_method_runs_end_to_end(planted: PlantedData, method: str) -> None:
    gd = GroupDiscovery(_config(method=method)).fit(planted.dataset)
    assert gd.n_groups_ >= 2
    assert len(gd.assignments_) == 240


@pytest.mark.slow
def test_users_with_only_text_get_a_group_and_popular_items() -> None:
    inter = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "z"]})
    texts = pd.DataFrame({"user_id": ["a", "b", "c"], "text": ["guitar", "drums", "guitar"]})
    ds = build_dataset(inter, texts)
    gd = GroupDiscovery(_config(n_groups=2, min_group_size=1)).fit(ds)
    assert len(gd.recommend(["c"], n=2)) == 2


def test_aligned_model_round_trips_its_blends(fitted: GroupDiscovery, tmp_path: Path) -> None:
    assert fitted.head_ is not None and fitted.personal_ is not None
    loaded = GroupDiscovery.load(fitted.save(tmp_path / "aligned"))
    assert loaded.personal_weight_ == fitted.personal_weight_
    assert loaded.cold_weight_ == fitted.cold_weight_
    assert loaded.new_users_.describe() == fitted.new_users_.describe()
    users = fitted.user_ids_.ids[:7].tolist()
    np.testing.assert_allclose(loaded.user_scores(users), fitted.user_scores(users), atol=1e-6)
    texts = ["words about one thing", "other words"]
    np.testing.assert_allclose(loaded.text_scores(texts), fitted.text_scores(texts), atol=1e-6)


def test_models_saved_before_the_new_user_model_keep_their_rule(
    fitted: GroupDiscovery, tmp_path: Path
) -> None:
    from usergroups.recommend.hybrid import blend

    directory = fitted.save(tmp_path / "old")
    state = json.loads((directory / "state.json").read_text())
    del state["new_users"]  # what an older version wrote
    (directory / "state.json").write_text(json.dumps(state))
    (directory / "manifest.json").unlink()  # older versions wrote no manifest
    loaded = GroupDiscovery.load(directory)
    assert loaded.new_users_.membership == "hard"
    texts = ["words about one thing", "other words"]
    proba, _, semantic = loaded._new_users(texts)
    old_rule = blend(
        loaded.recommender_.group_scores(proba.argmax(axis=1)),
        loaded.ridge_.scores(semantic),
        loaded.cold_weight_,
    )
    np.testing.assert_allclose(loaded.text_scores(texts), old_rule, atol=1e-6)


@pytest.mark.slow
def test_without_alignment_new_users_use_frozen_vectors(planted: PlantedData) -> None:
    cfg = _config().with_overrides({"align.method": "none", "recommend.personal": "none"})
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    assert gd.head_ is None and gd.personal_ is None
    np.testing.assert_allclose(gd.aligned_, gd.semantic_, atol=1e-6)
    # recommend() is then the group part alone (the fine groups' mean), seen items excluded
    user = gd.user_ids_.ids[0]
    assert gd.state_.fine is not None  # on by default, with the documented sizes
    row = gd.user_group_scores(np.array([0]))[0]
    seen = set(gd.seen_[0].indices)
    best = [i for i in np.argsort(-row, kind="stable") if i not in seen][:3]
    assert gd.recommend(user, n=3)["item_id"].tolist() == gd.item_ids_.ids[best].tolist()


@pytest.mark.slow
def test_groups_joined_by_post_processing_are_reported(planted: PlantedData) -> None:
    # four planted groups of about 60 users, and groups need 100 members: three are folded
    gd = GroupDiscovery(_config(min_group_size=100).with_overrides({"align.method": "none"})).fit(
        planted.dataset
    )
    assert gd.metrics_["n_groups"] < 4
    lines = [f for f in gd.metrics_["fallbacks"] if "kept after post-processing" in f]
    assert lines and "4 chosen" in lines[0] and "min_group_size=100" in lines[0]


class _Int8FallbackEncoder:
    """The hashing encoder behind a wrapper, as the cache wraps an ONNX encoder whose int8
    self-check fell back to fp32 (``int8_check_`` on the inner encoder)."""

    def __init__(self) -> None:
        from usergroups.embedding.hashing import HashingEncoder

        inner = HashingEncoder(dim=64)
        inner.int8_check_ = {  # type: ignore[attr-defined]
            "recipe": "per-channel",
            "fallback": True,
            "mean_cosine": 0.91,
            "min_cosine": 0.55,
            "target": "avx2",
            "tried": [],
        }
        self.inner = inner
        self.name = inner.name

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self.inner.encode(texts)


def test_issue21_one_fallback_line_per_int8_fallback(planted: PlantedData) -> None:
    gd = GroupDiscovery(_config(), encoder=_Int8FallbackEncoder()).fit(planted.dataset)
    int8_lines = [f for f in gd.metrics_["fallbacks"] if f.startswith("embedding.backend")]
    assert len(int8_lines) == 1, int8_lines
    assert "avx2" in int8_lines[0]
    assert gd.metrics_["int8_check"]["fallback"] is True


def test_issue21_a_weight_the_data_forced_is_labelled_data(planted: PlantedData) -> None:
    """One item allows no SVD component: the text weight is 1 whatever the config says,
    so its source is "data", not "config" (issue 21)."""
    ds = planted.dataset
    one_item = ds.item_ids.ids[0]
    inter = ds.interactions.assign(item_id=one_item).drop_duplicates("user_id")
    texts = ds.texts.assign(item_id=None)
    single = build_dataset(inter, texts, name="one-item")
    cfg = _config(n_groups=2).with_overrides(
        {"user_vectors.text_weight": 0.3, "recommend.personal": "none"}
    )
    gd = GroupDiscovery(cfg).fit(single)
    choice = gd.state_.choices["text_weight"]
    assert (choice.value, choice.source) == (1.0, "data")
    assert "no behaviour block" in choice.reason
    assert gd.metrics_["choices"]["text_weight"]["source"] == "data"
    text_only = GroupDiscovery(cfg.with_overrides({"user_vectors.behaviour": "none"})).fit(single)
    assert text_only.state_.choices["text_weight"].source == "config"


def test_issue21_choice_source_data_round_trips_and_old_sources_load() -> None:
    from usergroups.fitted import Choice

    data = Choice(1.0, "data", "no behaviour block")
    assert Choice.from_dict(data.to_dict()) == data
    for old in ("validation", "config", "default"):
        assert Choice.from_dict({"value": 0.5, "source": old}).source == old
    with pytest.raises(DataError, match="not one of validation, config, default, data"):
        Choice.from_dict({"value": 0.5, "source": "guess"})


def test_issue21_the_text_weight_is_stored_once_and_checked(
    fitted: GroupDiscovery, tmp_path: Path
) -> None:
    """state.json held the weight as a scalar and as a choice; load read one and refit the
    other, and nothing checked they agreed (issue 21)."""
    directory = fitted.save(tmp_path / "once")
    state = json.loads((directory / "state.json").read_text())
    assert "text_weight" not in state
    weight = state["choices"]["text_weight"]["value"]
    assert GroupDiscovery.load(directory).state_.text_weight == weight
    # a model saved before: both copies, agreeing, still loads (and had no manifest)
    (directory / "manifest.json").unlink()
    (directory / "state.json").write_text(json.dumps({**state, "text_weight": weight}))
    assert GroupDiscovery.load(directory).state_.text_weight == weight
    # ... and disagreeing copies are an error naming both
    other = 1.0 - weight if weight != 0.5 else 0.25
    (directory / "state.json").write_text(json.dumps({**state, "text_weight": other}))
    with pytest.raises(ModelDirectoryError, match=r"text_weight.*must agree"):
        GroupDiscovery.load(directory)


def test_issue21_a_state_whose_text_weight_disagrees_with_its_choice_is_refused(
    fitted: GroupDiscovery,
) -> None:
    from usergroups.fitted import Choice

    state = fitted.state_
    with pytest.raises(DataError, match="disagrees with choices"):
        state.replace(
            text_weight=0.123, choices={**state.choices, "text_weight": Choice(0.5, "config")}
        )
