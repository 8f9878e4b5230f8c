"""Issue 25: one answer without pandas, scipy or pydantic, the same bytes as the full load.

`usergroups assign` and `recommend` read a saved model through `usergroups.answers`
(numpy, the manifest, `state.json`, the arrays one answer needs and `answer.json`); the
tables they print must be what `GroupDiscovery.load(...).assign/recommend` print, in every
format, for every kind of model the fit makes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.answers import ANSWER_ARRAYS, ANSWER_FILE, SparseRows, load_answers
from usergroups.cli.format import render
from usergroups.cli.main import _shown_names, main
from usergroups.testing import make_planted

FORMATS = ("table", "json", "markdown")

_KINDS: dict[str, dict[str, Any]] = {
    # aligned, fine groups, EASE, the new-user spread through EASE, kNN placement
    "head-fine-ease-spread": {
        "align": {"method": "head", "dim": 8, "max_epochs": 2},
        "clustering": {"n_groups": 3, "fine_k": 4, "fine_partitions": 3},
        "recommend": {
            "personal": "ease",
            "personal_weight": 0.6,
            "cold_spread_weight": 0.4,
            "cold_weight": 0.3,
        },
    },
    # no head, no fine groups, item-kNN (CSR weights), centroid placement
    "itemknn-centroid": {
        "align": {"method": "none"},
        "user_vectors": {"text_weight": 0.5},
        "clustering": {"n_groups": 3, "fine_partitions": 0},
        "assign": {"method": "centroid"},
        "random_state": 2,  # a seed whose validation keeps the personal model
        "recommend": {
            "personal": "itemknn",
            "cold_spread_weight": 0.5,
            "knn_neighbors": 6,
        },
    },
}


@pytest.fixture(scope="module", params=sorted(_KINDS))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = make_planted(n_users=90, n_groups=3, n_items=40, texts_per_user=2, random_state=3)
    cfg = DiscoveryConfig.model_validate(
        {"embedding": {"model": "hashing:32", "use_cache": False}, "random_state": 0}
        | _KINDS[request.param]
    )
    path = tmp_path_factory.mktemp(request.param) / "model"
    GroupDiscovery(cfg).fit(planted.dataset).save(path)
    return path


def _users(path: Path) -> list[str]:
    """A light user, the heaviest user and a middle one."""
    answers = load_answers(path)
    assert answers is not None
    ptr = answers._state.seen_indptr
    counts = np.diff(ptr)
    order = np.argsort(counts, kind="stable")
    return [answers.user_ids[int(i)] for i in (order[0], order[-1], order[len(order) // 2])]


TEXTS = ["loud rock riffs and a heavy distortion pedal", "soft classical nylon strings"]


@pytest.mark.parametrize("n", [5, 1000])
def test_issue25_answers_are_the_bytes_of_the_full_load(saved: Path, n: int) -> None:
    answers = load_answers(saved)
    assert answers is not None
    full = GroupDiscovery.load(saved)
    users = _users(saved)
    fast_recs = answers.recommend(users, n=n)
    assert fast_recs is not None
    full_recs = full.recommend(users, n=n)
    fast_assign = answers.assign(TEXTS, n=n)
    full_assign = full.assign(TEXTS, n=n)
    assert len(fast_recs) == len(full_recs) > 0
    for fmt in FORMATS:
        assert render(_shown_names(fast_recs, fmt), fmt) == render(
            _shown_names(full_recs, fmt), fmt
        )  # type: ignore[arg-type]
        assert render(_shown_names(fast_assign, fmt), fmt) == render(  # type: ignore[arg-type]
            _shown_names(full_assign, fmt),
            fmt,  # type: ignore[arg-type]
        )


def test_issue25_the_models_exercise_every_part_of_an_answer(saved: Path) -> None:
    """The byte test means something only if the parts are there: fine groups, a head and
    the EASE spread in one model; item-kNN and centroid placement in the other."""
    full = GroupDiscovery.load(saved)
    state = full.state_
    if saved.parent.name.startswith("head-fine-ease-spread"):
        assert state.fine is not None and state.head is not None
        assert full.personal_.name == "ease" and full.new_users_.weights["spread"] > 0
    else:
        assert state.fine is None and state.head is None
        assert full.personal_.name == "itemknn" and full.config.assign.method == "centroid"
    assert full.personal_weight_ > 0


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _as_older_model(path: Path, older: Path) -> None:
    """``path`` as a model saved before the answer bundle: without its files, and a
    manifest that never listed them."""
    import shutil

    shutil.copytree(path, older)
    for name in (ANSWER_FILE, ANSWER_ARRAYS):
        (older / name).unlink()
    manifest = json.loads((older / "manifest.json").read_text())
    for name in (ANSWER_FILE, ANSWER_ARRAYS):
        del manifest["files"][name]
    (older / "manifest.json").write_text(json.dumps(manifest))


def test_issue25_an_older_model_is_answered_by_the_full_load_and_says_so(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = tmp_path / "older"
    _as_older_model(saved, older)
    user = _users(saved)[1]
    for args in (["recommend", "--user", user], ["assign", "--text", TEXTS[0]]):
        rc_new, new, err_new = _run([args[0], str(saved), *args[1:], "--format", "json"], capsys)
        rc_old, old, err_old = _run([args[0], str(older), *args[1:], "--format", "json"], capsys)
        assert rc_new == rc_old == 0 and new == old
        assert "full load" not in err_new
        said = [line for line in err_old.splitlines() if "full load" in line]
        assert said == [
            f"INFO usergroups.answers: {older} is answered through the full load: it has no "
            f"{ANSWER_FILE} (saved before usergroups wrote one)"
        ]


def test_issue25_a_changed_answer_bundle_fails_the_manifest_check(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(saved, damaged)
    bundle = json.loads((damaged / ANSWER_FILE).read_text())
    bundle["user_ids"][0] = "someone-else"
    (damaged / ANSWER_FILE).write_text(json.dumps(bundle))
    rc, out, err = _run(["recommend", str(damaged), "--user", "someone-else"], capsys)
    assert rc == 1 and not out
    assert err.startswith(f"error: {damaged / ANSWER_FILE} has ") and "manifest.json says" in err


def test_issue25_an_unknown_user_gets_the_full_loads_message(
    saved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _run(["recommend", str(saved), "--user", "nobody-here"], capsys)
    assert rc == 1 and not out
    assert "1 user_id(s) are not known to this model (e.g. 'nobody-here')" in err


@pytest.mark.parametrize("by", ["row", "col"])
@pytest.mark.parametrize("seed", range(5))
def test_sparse_rows_add_what_scipy_adds_in_its_order(by: str, seed: int) -> None:
    """The same float32 bits as scipy's product of CSR rows (given in any order) by the
    weights, stored by rows (item-kNN) or by columns (EASE)."""
    rng = np.random.default_rng(seed)
    w = sp.random(60, 50, density=0.3, format="csr", dtype=np.float32, random_state=seed)
    w.data = (rng.standard_normal(w.nnz) * 10.0 ** rng.integers(-3, 3, w.nnz)).astype(np.float32)
    stored = w if by == "row" else sp.csc_matrix(w)
    rows = [rng.permutation(60)[: int(k)] for k in rng.integers(1, 40, size=4)]
    weights = [rng.random(len(r)).astype(np.float32) for r in rows]
    ours = SparseRows(stored.data, stored.indices, stored.indptr, w.shape, by=by).weighted_rows(
        rows, weights
    )
    left = sp.csr_matrix(
        (np.concatenate(weights), np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows])),
        shape=(len(rows), 60),
    )
    theirs = (left @ stored.tocsr()).toarray()
    assert ours.dtype == np.float32
    assert np.array_equal(ours.view(np.uint32), theirs.astype(np.float32).view(np.uint32))
