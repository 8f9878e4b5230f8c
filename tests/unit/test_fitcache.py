"""The fit cache: results of pure fit steps reused when their inputs hash the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.fitcache import FITS_ENV, FitCache, fingerprint, fit_cache_dir
from usergroups.testing import make_planted


def test_fingerprint_tells_apart_values_dtypes_shapes_and_types() -> None:
    a = np.arange(6, dtype=np.float32)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.astype(np.float64))
    assert fingerprint(a) != fingerprint(a.reshape(2, 3))
    assert fingerprint(a) != fingerprint(a + 1e-7)
    assert fingerprint("1") != fingerprint(1)
    assert fingerprint([1, 2]) != fingerprint([[1, 2]])
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    m = sp.csr_matrix(np.eye(3, dtype=np.float32))
    assert fingerprint(m) == fingerprint(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    assert fingerprint(m) != fingerprint(sp.csr_matrix(2 * np.eye(3, dtype=np.float32)))
    frame = pd.DataFrame({"u": ["a", "b"], "i": [1, 2]})
    assert fingerprint(frame) != fingerprint(frame.assign(i=[1, 3]))
    assert fingerprint(frame) != fingerprint(frame.rename(columns={"i": "item"}))
    with pytest.raises(TypeError, match="cannot hash"):
        fingerprint(object())


def test_a_second_call_with_equal_inputs_is_served_from_disk(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"value": len(calls)}

    first = FitCache(tmp_path).get_or_compute("step", (np.arange(3), "x"), compute)
    again = FitCache(tmp_path)
    second = again.get_or_compute("step", (np.arange(3), "x"), compute)
    assert first == second == {"value": 1} and len(calls) == 1
    assert again.hits == 1 and again.reused == ["step"]
    other = again.get_or_compute("step", (np.arange(4), "x"), compute)
    assert other == {"value": 2}  # other inputs, computed again
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_a_damaged_entry_is_recomputed_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fc = FitCache(tmp_path)
    fc.get_or_compute("step", (1,), lambda: 1)
    (entry,) = tmp_path.glob("step-*.pkl")
    entry.write_bytes(b"not a pickle")
    with caplog.at_level("WARNING"):
        assert FitCache(tmp_path).get_or_compute("step", (1,), lambda: 2) == 2
    assert "unreadable" in caplog.text
    assert FitCache(tmp_path).get_or_compute("step", (1,), lambda: 3) == 2


def test_an_off_cache_always_computes() -> None:
    fc = FitCache(None)
    assert fc.get_or_compute("step", (1,), lambda: 1) == 1
    assert fc.get_or_compute("step", (1,), lambda: 2) == 2
    assert not fc.enabled


def test_the_directory_follows_the_environment_then_the_embedding_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FITS_ENV, str(tmp_path / "here"))
    assert fit_cache_dir(str(tmp_path / "emb")) == tmp_path / "here"
    monkeypatch.delenv(FITS_ENV)
    assert fit_cache_dir(str(tmp_path / "emb")) == tmp_path / "fits"


STEPS = {
    "language",
    "user_vectors",
    "selection",
    "clustering",
    "item_names",
    "profiles",
    "stability",
    "sub_interests",
}


def _config(reuse: bool = True) -> DiscoveryConfig:
    return DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:32", "use_cache": False},
            "clustering": {"n_groups": "auto", "k_max": 5},
            "align": {"method": "head", "dim": 8, "max_epochs": 3},
            "reuse": reuse,
        }
    )


def test_a_refit_on_identical_inputs_reuses_every_step_and_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = make_planted(n_users=90, n_groups=3, n_items=40, texts_per_user=2, random_state=3).dataset
    first = GroupDiscovery(_config()).fit(ds)
    assert first.metrics_["reused"] == []

    import usergroups.selection as selection

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("select ran again on identical inputs")

    monkeypatch.setattr(selection, "select", fail)
    second = GroupDiscovery(_config()).fit(ds)
    assert set(second.metrics_["reused"]) == STEPS
    np.testing.assert_array_equal(first.labels_, second.labels_)
    assert first.metrics_["choices"] == second.metrics_["choices"]
    pd.testing.assert_frame_equal(first.groups_, second.groups_)
    pd.testing.assert_frame_equal(first.assign(["a new text"]), second.assign(["a new text"]))


def test_changed_settings_or_data_compute_again() -> None:
    planted = make_planted(n_users=90, n_groups=3, n_items=40, texts_per_user=2, random_state=3)
    GroupDiscovery(_config()).fit(planted.dataset)
    other = _config().with_overrides({"recommend.smoothing": 3.0})
    assert "selection" not in GroupDiscovery(other).fit(planted.dataset).metrics_["reused"]
    # a new description of the same groups reuses the selection, not the profiles
    words = _config().with_overrides({"profile.n_keywords": 3})
    assert set(GroupDiscovery(words).fit(planted.dataset).metrics_["reused"]) == STEPS - {
        "profiles",
        "sub_interests",
    }
    fewer = make_planted(n_users=89, n_groups=3, n_items=40, texts_per_user=2, random_state=3)
    assert GroupDiscovery(_config()).fit(fewer.dataset).metrics_["reused"] == []
    # other vectors (another encoder) reuse only what reads the texts alone
    hashed = _config().with_overrides({"embedding.model": "hashing:16"})
    assert GroupDiscovery(hashed).fit(planted.dataset).metrics_["reused"] == ["item_names"]


def test_reuse_off_or_a_passed_in_component_computes_everything() -> None:
    from usergroups.clustering import KMeansGroups

    ds = make_planted(n_users=60, n_groups=2, n_items=30, texts_per_user=1, random_state=4).dataset
    GroupDiscovery(_config()).fit(ds)
    assert GroupDiscovery(_config(reuse=False)).fit(ds).metrics_["reused"] == []
    cfg = _config().with_overrides({"clustering.n_groups": 2})
    gd = GroupDiscovery(cfg, clusterer=KMeansGroups(n_groups=2, random_state=0))
    assert gd.fit(ds).metrics_["reused"] == []


def test_large_data_turn_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import usergroups.fitcache as fitcache

    ds = make_planted(n_users=60, n_groups=2, n_items=30, texts_per_user=1, random_state=6).dataset
    monkeypatch.setattr(fitcache, "MAX_USERS", 59)
    GroupDiscovery(_config()).fit(ds)
    assert GroupDiscovery(_config()).fit(ds).metrics_["reused"] == []
    monkeypatch.setattr(fitcache, "MAX_USERS", 60)
    GroupDiscovery(_config()).fit(ds)
    assert GroupDiscovery(_config()).fit(ds).metrics_["reused"] != []
