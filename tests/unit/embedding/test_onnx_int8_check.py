"""The int8 agreement check: a quantised model that disagrees with fp32 is never served.

A tiny hand-made model stands in for the real one: its "transformer" is a Gather from a
token table, so the fp32 export and the quantised ones are ONNX files written here.
``export_onnx`` is replaced by a lookup of those folders; a broken "quantised" model
(the table negated) has a cosine of -1 with fp32 on every probe, a good one (the table
plus noise far below int8 rounding) a cosine of 1.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from usergroups.embedding import OnnxEncoder, export_onnx
from usergroups.embedding import onnx as onnx_mod
from usergroups.embedding.onnx import INT8_CHECK_FILE, INT8_PROBE_TEXTS, INT8_RECIPES
from usergroups.errors import ConfigError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
tokenizers = pytest.importorskip("tokenizers")

DIM = 8
WORDS = "the and it is for a to not great good sound strings battery ok size money".split()
TEXTS = ["great sound", "", "it is not good for the money", "ok"]


def _write_source_model(path: Path) -> None:
    """A sentence-transformers folder as the encoder's constructor reads it."""
    (path / "1_Pooling").mkdir(parents=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    pooling = {"word_embedding_dimension": DIM, "pooling_mode_mean_tokens": True}
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    (path / "config.json").write_text(json.dumps({"max_position_embeddings": 512}), "utf-8")


def _write_export(folder: Path, table: np.ndarray) -> Path:
    """An exported folder: ``onnx/model.onnx`` (token ids -> table rows) and a tokenizer."""
    from onnx import TensorProto, helper, numpy_helper

    (folder / "onnx").mkdir(parents=True)
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])
    out = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", DIM]
    )
    node = helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)
    init = numpy_helper.from_array(table.astype(np.float32), "table")
    graph = helper.make_graph([node], "tiny", [ids], [out], [init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the fast extra allows
    onnx.save(model, str(folder / "onnx" / "model.onnx"))
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    return folder


class FakeExports:
    """Stands in for :func:`export_onnx`: hands out prepared folders and records requests."""

    def __init__(self, root: Path, *, broken: set[str]) -> None:
        rng = np.random.default_rng(0)
        table = rng.normal(size=(len(WORDS) + 2, DIM))
        self.folders = {"fp32": _write_export(root / "fp32", table)}
        for recipe in INT8_RECIPES:
            if recipe in broken:
                int8 = -table  # every vector points the other way
            else:
                int8 = table + rng.normal(scale=1e-4, size=table.shape)
            self.folders[recipe] = _write_export(root / recipe, int8)
        self.requests: list[str] = []

    def __call__(
        self,
        model: str = "",
        *,
        quantize: bool = False,
        recipe: str = "per-channel",
        models_dir: Any = None,
    ) -> Path:
        key = recipe if quantize else "fp32"
        self.requests.append(key)
        return self.folders[key]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-model"
    _write_source_model(path)
    return path


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, broken: set[str]) -> FakeExports:
    fake = FakeExports(tmp_path / "exports", broken=broken)
    monkeypatch.setattr(onnx_mod, "export_onnx", fake)
    return fake


def _int8(source: Path, tmp_path: Path) -> OnnxEncoder:
    return OnnxEncoder(str(source), quantize=True, models_dir=tmp_path / "models", n_threads=1)


def _fp32_vectors(source: Path, tmp_path: Path) -> np.ndarray:
    enc = OnnxEncoder(str(source), models_dir=tmp_path / "models", n_threads=1)
    return enc.encode(TEXTS)


def test_int8_falls_back_to_fp32_with_a_warning_when_no_recipe_agrees(
    source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fake(tmp_path, monkeypatch, broken=set(INT8_RECIPES))
    enc = _int8(source, tmp_path)
    with (
        caplog.at_level(logging.WARNING, logger="usergroups.embedding.onnx"),
        pytest.warns(RuntimeWarning, match="serving fp32 ONNX vectors instead"),
    ):
        X = enc.encode(TEXTS)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    check = enc.int8_check_
    assert check["fallback"] is True and check["recipe"] is None
    assert [t["recipe"] for t in check["tried"]] == list(INT8_RECIPES)
    assert not any(t["passed"] for t in check["tried"])
    assert check["mean_cosine"] == pytest.approx(-1.0, abs=1e-5)
    json.dumps(check)  # ready for metrics.json
    # the vectors served are the fp32 model's, not the broken ones
    np.testing.assert_allclose(X, _fp32_vectors(source, tmp_path), atol=1e-6)
    assert "onnx-int8" in enc.name  # the name, and so the embedding cache, stays put


def test_int8_tries_the_next_recipe_when_the_first_disagrees(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake(tmp_path, monkeypatch, broken={"per-channel"})
    enc = _int8(source, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = enc.encode(TEXTS)
    check = enc.int8_check_
    assert check["recipe"] == "per-tensor" and check["fallback"] is False
    assert [t["passed"] for t in check["tried"]] == [False, True]
    assert check["mean_cosine"] >= onnx_mod.INT8_MIN_MEAN_COSINE
    assert check["min_cosine"] >= onnx_mod.INT8_MIN_COSINE
    np.testing.assert_allclose(X, _fp32_vectors(source, tmp_path), atol=1e-3)


def test_int8_uses_the_first_recipe_that_agrees_without_building_the_others(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake(tmp_path, monkeypatch, broken={"per-tensor"})
    enc = _int8(source, tmp_path)
    enc.encode(TEXTS)
    assert enc.int8_check_["recipe"] == INT8_RECIPES[0] == "per-channel"
    assert len(enc.int8_check_["tried"]) == 1
    assert enc.int8_check_["n_probes"] == len(INT8_PROBE_TEXTS)
    assert "per-tensor" not in fake.requests


def test_no_check_runs_before_the_model_is_needed(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake(tmp_path, monkeypatch, broken=set())
    enc = _int8(source, tmp_path)
    assert enc.encode(["", "  "]).shape == (2, DIM)
    assert fake.requests == [] and not hasattr(enc, "int8_check_")


def test_the_check_is_stored_beside_the_quantised_model_and_reused(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake(tmp_path, monkeypatch, broken=set())
    first = _int8(source, tmp_path)
    first.encode(TEXTS)
    assert first.int8_check_["tried"][0]["cached"] is False
    stored = json.loads((fake.folders["per-channel"] / INT8_CHECK_FILE).read_text("utf-8"))
    assert [e["recipe"] for e in stored.values()] == ["per-channel"]

    def no_probing(model: Any) -> np.ndarray:
        raise AssertionError("the probes were embedded again")

    monkeypatch.setattr(onnx_mod, "_embed_probes", no_probing)
    second = _int8(source, tmp_path)
    second.encode(TEXTS)
    assert second.int8_check_["tried"][0]["cached"] is True
    assert second.int8_check_["mean_cosine"] == first.int8_check_["mean_cosine"]


def test_a_changed_quantised_file_is_checked_again(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake(tmp_path, monkeypatch, broken=set())
    _int8(source, tmp_path).encode(TEXTS)
    # the same folder now holds a broken model (rebuilt by another version, say)
    folder = fake.folders["per-channel"]
    model = folder / "onnx" / "model.onnx"
    stat = model.stat()
    graph = onnx.load(str(model))
    table = onnx.numpy_helper.to_array(graph.graph.initializer[0])
    graph.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(-table, "table"))
    onnx.save(graph, str(model))
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    enc = _int8(source, tmp_path)
    enc.encode(TEXTS)
    checked = enc.int8_check_["tried"][0]
    assert (checked["recipe"], checked["passed"], checked["cached"]) == (
        "per-channel",
        False,
        False,
    )
    assert enc.int8_check_["recipe"] == "per-tensor"


def test_thresholds_apply_at_every_load_even_to_stored_checks(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake(tmp_path, monkeypatch, broken=set())
    _int8(source, tmp_path).encode(TEXTS)
    monkeypatch.setattr(onnx_mod, "INT8_MIN_MEAN_COSINE", 1.01)
    enc = _int8(source, tmp_path)
    with pytest.warns(RuntimeWarning, match="need mean >= 1.01"):
        enc.encode(TEXTS)
    assert enc.int8_check_["fallback"] is True
    assert enc.int8_check_["thresholds"]["mean_cosine"] == 1.01
    assert enc.int8_check_["tried"][0]["cached"] is True


def test_an_unwritable_models_folder_still_loads_and_checks(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake(tmp_path, monkeypatch, broken=set())

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(onnx_mod.os, "replace", refuse)
    enc = _int8(source, tmp_path)
    enc.encode(TEXTS)
    assert enc.int8_check_["recipe"] == "per-channel"
    assert not (fake.folders["per-channel"] / INT8_CHECK_FILE).exists()
    assert not list(fake.folders["per-channel"].glob(f".{INT8_CHECK_FILE}*"))


def test_export_rejects_an_unknown_recipe_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="recipe='per-row' is not one of 'per-channel'"):
        export_onnx(quantize=True, recipe="per-row")  # type: ignore[arg-type]
