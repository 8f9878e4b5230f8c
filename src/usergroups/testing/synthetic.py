"""Generate users with planted groups, whose true labels are known.

Each planted group has its own favourite items and its own vocabulary. Users draw most
interactions from their group's items and write texts mostly from their group's words, so
a working pipeline must recover the groups from either signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usergroups.data import Dataset, build_dataset

__all__ = ["PlantedData", "make_planted"]

_TOPICS = [
    ["guitar", "strings", "acoustic", "fret", "chord", "pick", "tuner", "capo", "bridge", "nylon"],
    ["drum", "snare", "cymbal", "sticks", "kick", "pedal", "hihat", "tom", "rim", "beat"],
    ["piano", "keyboard", "keys", "sustain", "midi", "synth", "octave", "weighted", "bench"],
    ["microphone", "vocal", "condenser", "xlr", "preamp", "podcast", "studio", "pop", "filter"],
    ["violin", "bow", "rosin", "cello", "viola", "chinrest", "orchestra", "bowing", "scroll"],
    ["trumpet", "valve", "mouthpiece", "brass", "horn", "trombone", "mute", "embouchure"],
    ["amplifier", "tube", "distortion", "cabinet", "speaker", "watt", "overdrive", "gain"],
    ["ukulele", "soprano", "tenor", "hawaii", "strum", "island", "koa", "beach", "ukes"],
]
_COMMON = ["great", "good", "product", "works", "price", "quality", "nice", "love", "bought"]


@dataclass(frozen=True)
class PlantedData:
    """A generated dataset and the planted group of each user.

    Attributes
    ----------
    dataset : Dataset
    labels : dict[str, int]
        ``user_id -> planted group``.
    """

    dataset: Dataset
    labels: dict[str, int]

    def labels_for(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """Planted labels in the order of ``user_ids``."""
        return np.array([self.labels[str(u)] for u in user_ids], dtype=np.int64)

    def text_for_group(self, group: int, rng: np.random.Generator, n_words: int = 12) -> str:
        """A fresh text written the way members of ``group`` write."""
        return _sentence(group, rng, n_words, text_purity=0.8)


def _sentence(group: int, rng: np.random.Generator, n_words: int, text_purity: float) -> str:
    words = []
    topic = _TOPICS[group % len(_TOPICS)]
    for _ in range(n_words):
        if rng.random() < text_purity:
            words.append(str(rng.choice(topic)))
        else:
            words.append(str(rng.choice(_COMMON)))
    return " ".join(words).capitalize() + "."


def make_planted(
    n_users: int = 300,
    n_groups: int = 4,
    n_items: int = 120,
    *,
    interactions_per_user: int = 12,
    texts_per_user: int = 2,
    purity: float = 0.85,
    text_purity: float = 0.6,
    random_state: int = 0,
) -> PlantedData:
    """Generate interactions, texts and item metadata with ``n_groups`` planted groups.

    Parameters
    ----------
    n_users, n_groups, n_items : int
        Sizes; ``n_groups`` is at most 8 (one vocabulary each).
    interactions_per_user : int
        Distinct items per user.
    texts_per_user : int
        Reviews per user, each about one of the user's items.
    purity : float
        Probability that an interaction comes from the user's group's items.
    text_purity : float
        Probability that a word comes from the group's vocabulary rather than common words.
    random_state : int

    Examples
    --------
    >>> planted = make_planted(n_users=40, n_groups=2, random_state=0)
    >>> planted.dataset.n_users
    40
    """
    if not 1 <= n_groups <= len(_TOPICS):
        raise ValueError(f"n_groups must be in 1..{len(_TOPICS)}, got {n_groups}")
    rng = np.random.default_rng(random_state)
    item_group = np.arange(n_items) % n_groups
    user_group = np.arange(n_users) % n_groups
    rng.shuffle(user_group)
    # Zipf-like popularity inside each group so "top items" are well defined
    weights = 1.0 / (1.0 + np.arange(n_items) // n_groups) ** 0.8
    rows: list[tuple[str, str, float, int]] = []
    texts: list[tuple[str, str, str, float, int]] = []
    for u in range(n_users):
        g = int(user_group[u])
        own = item_group == g
        p = np.where(own, purity / own.sum(), (1 - purity) / max((~own).sum(), 1)) * weights
        p /= p.sum()
        items = rng.choice(n_items, size=min(interactions_per_user, n_items), replace=False, p=p)
        t0 = int(rng.integers(1_500_000_000, 1_600_000_000))
        for j, i in enumerate(items):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(3, 6)), t0 + 3600 * j))
        for j in range(min(texts_per_user, len(items))):
            texts.append(
                (
                    f"u{u}",
                    _sentence(g, rng, 12, text_purity),
                    f"i{items[j]}",
                    float(rng.integers(3, 6)),
                    t0 + 3600 * j,
                )
            )
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    tx = pd.DataFrame(texts, columns=["user_id", "text", "item_id", "rating", "timestamp"])
    items_df = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [
                f"{_TOPICS[item_group[i] % len(_TOPICS)][i % 5].title()} item {i}"
                for i in range(n_items)
            ],
            "categories": [f"topic{item_group[i]}" for i in range(n_items)],
        }
    )
    ds = build_dataset(inter, tx, items_df, name=f"planted-{n_groups}")
    labels = {f"u{u}": int(user_group[u]) for u in range(n_users)}
    return PlantedData(dataset=ds, labels=labels)
