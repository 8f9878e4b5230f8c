"""HashingEncoder: the deterministic, torch-free stand-in."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from usergroups.embedding import HashingEncoder, tokenize
from usergroups.errors import ConfigError


def test_texts_about_the_same_words_land_close() -> None:
    enc = HashingEncoder()
    X = enc.encode(
        [
            "I need strings for my acoustic guitar",
            "acoustic guitar strings, need new ones",
            "the blender broke after a week",
        ]
    )
    assert X[0] @ X[1] > 0.45  # 4 shared tokens of 7 and 6: about 4 / sqrt(42) = 0.62
    assert abs(X[0] @ X[2]) < 0.3


def test_repeated_words_weigh_sublinearly() -> None:
    enc = HashingEncoder()
    once, many, other = enc.encode(["guitar capo", "guitar guitar guitar guitar capo", "capo"])
    # four "guitar"s count 1 + log 4 ≈ 2.4 times, not 4 times
    assert many @ other > 0.3
    assert once @ many > 0.9


def test_vectors_are_identical_across_instances_and_processes() -> None:
    texts = ["Great strings", "音色很好"]
    X = HashingEncoder(dim=64).encode(texts)
    np.testing.assert_array_equal(X, HashingEncoder(dim=64).encode(texts))
    code = (
        "import numpy as np; from usergroups.embedding import HashingEncoder;"
        "print(HashingEncoder(dim=64).encode(['Great strings', '音色很好']).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert bytes.fromhex(out.stdout.strip()) == X.tobytes()


def test_random_state_changes_the_directions() -> None:
    a = HashingEncoder(dim=64, random_state=0).encode(["guitar strings"])
    b = HashingEncoder(dim=64, random_state=1).encode(["guitar strings"])
    assert abs(float(a[0] @ b[0])) < 0.5
    assert HashingEncoder(random_state=0).name != HashingEncoder(random_state=1).name


def test_token_directions_look_gaussian() -> None:
    # one token per text: each row is that token's direction
    X = HashingEncoder(dim=256).encode([f"token{i}" for i in range(2000)])
    values = X.ravel() * np.sqrt(256)
    assert abs(values.mean()) < 0.01
    assert abs(values.std() - 1.0) < 0.01
    assert abs(np.mean(values**4) - 3.0) < 0.1  # Gaussian kurtosis
    gram = X @ X.T
    off_diagonal = gram[~np.eye(len(X), dtype=bool)]
    assert abs(off_diagonal.mean()) < 0.01
    assert off_diagonal.std() == pytest.approx(1 / 16, rel=0.1)


def test_odd_dim_works() -> None:
    X = HashingEncoder(dim=7).encode(["a b c"])
    assert X.shape == (1, 7)
    assert np.linalg.norm(X[0]) == pytest.approx(1.0, abs=1e-6)


def test_chinese_is_tokenised_into_characters_and_bigrams() -> None:
    assert tokenize("吉他弦 Great") == ["吉", "他", "弦", "吉他", "他弦", "great"]
    enc = HashingEncoder()
    X = enc.encode(["吉他弦音色很好", "这个吉他弦音色不错", "搅拌机一周就坏了"])
    assert X[0] @ X[1] > 0.5
    assert X[0] @ X[2] < 0.2


def test_tokens_ignore_case_punctuation_and_underscores() -> None:
    assert tokenize("Don't_STOP, 10/10!") == ["don", "t", "stop", "10", "10"]
    enc = HashingEncoder(dim=32)
    np.testing.assert_allclose(
        enc.encode(["Guitar, STRINGS!"]), enc.encode(["guitar strings"]), atol=1e-7
    )


def test_non_ascii_latin_text_is_tokenised() -> None:
    assert tokenize("Très bien, CAFÉ") == ["très", "bien", "café"]


def test_separator_character_in_text_does_not_split_rows() -> None:
    enc = HashingEncoder(dim=32)
    X = enc.encode(["a\x1fb", "c"])
    np.testing.assert_allclose(X[0], enc.encode(["a b"])[0], atol=1e-7)
    np.testing.assert_allclose(X[1], enc.encode(["c"])[0], atol=1e-7)


@pytest.mark.parametrize("dim", [0, -3, 2.5, True, "8"])
def test_bad_dim_is_rejected(dim: object) -> None:
    with pytest.raises(ConfigError, match="positive int"):
        HashingEncoder(dim)  # type: ignore[arg-type]


def test_ten_thousand_short_texts_encode_in_one_call() -> None:
    # speed is measured in bench/, never asserted in tests (shared machines are noisy)
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(3000)])
    texts = [" ".join(row) for row in words[rng.integers(0, 3000, size=(10_000, 15))].tolist()]
    X = HashingEncoder().encode(texts)
    assert X.shape == (10_000, 256)
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
