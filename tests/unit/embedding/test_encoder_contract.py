"""The Encoder contract, checked for every encoder that runs without torch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from usergroups.config import EmbeddingConfig
from usergroups.embedding import (
    CachedEncoder,
    CleaningEncoder,
    Encoder,
    HashingEncoder,
    make_encoder,
)
from usergroups.errors import DataError

TEXTS = [
    "Great strings, bright sound",
    "",
    "The blender broke after a week",
    "   ",
    "Great strings, bright sound",
    "音色很好，推荐购买",
    "!!!",
]

Factory = Callable[[Path], Encoder]
FACTORIES: dict[str, Factory] = {
    "hashing": lambda tmp: HashingEncoder(dim=32),
    "cached-hashing": lambda tmp: CachedEncoder(HashingEncoder(dim=32), tmp / "cache"),
    "cleaning-hashing": lambda tmp: CleaningEncoder(HashingEncoder(dim=32)),
    "make_encoder": lambda tmp: make_encoder(
        EmbeddingConfig(model="hashing:32", cache_dir=str(tmp / "cache2"))
    ),
}


@pytest.fixture(params=sorted(FACTORIES))
def encoder(request: pytest.FixtureRequest, tmp_path: Path) -> Encoder:
    return FACTORIES[request.param](tmp_path)


def test_encoder_satisfies_protocol(encoder: Encoder) -> None:
    assert isinstance(encoder, Encoder)
    assert isinstance(encoder.name, str) and encoder.name
    assert encoder.dim == 32


def test_encode_returns_float32_rows_in_input_order(encoder: Encoder) -> None:
    X = encoder.encode(TEXTS)
    assert X.shape == (len(TEXTS), encoder.dim)
    assert X.dtype == np.float32
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X[0], X[4])


def test_rows_are_unit_norm_and_blank_texts_give_zero_rows(encoder: Encoder) -> None:
    X = encoder.encode(TEXTS)
    norms = np.linalg.norm(X, axis=1)
    assert np.isfinite(X).all()
    np.testing.assert_allclose(norms[[0, 2, 4, 5]], 1.0, atol=1e-5)
    np.testing.assert_array_equal(X[1], 0.0)
    np.testing.assert_array_equal(X[3], 0.0)


def test_encoding_is_independent_of_batch_order(encoder: Encoder) -> None:
    forward = encoder.encode(TEXTS)
    backward = encoder.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-6)


def test_encode_is_deterministic(encoder: Encoder) -> None:
    np.testing.assert_array_equal(encoder.encode(TEXTS), encoder.encode(TEXTS))


def test_encode_empty_list_gives_empty_matrix(encoder: Encoder) -> None:
    X = encoder.encode([])
    assert X.shape == (0, encoder.dim)
    assert X.dtype == np.float32


def test_encode_rejects_a_single_string(encoder: Encoder) -> None:
    with pytest.raises(DataError, match="single str"):
        encoder.encode("just one text")


def test_encode_rejects_non_string_items(encoder: Encoder) -> None:
    with pytest.raises(DataError, match=r"texts\[1\] is a float"):
        encoder.encode(["ok", float("nan")])  # type: ignore[list-item]
