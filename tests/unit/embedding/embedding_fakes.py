"""Stand-in encoders for the embedding tests (a unique module name: tests have no packages)."""

from __future__ import annotations

from collections.abc import Sequence

from usergroups._typing import FloatMatrix
from usergroups.embedding import HashingEncoder


class CountingEncoder:
    """A hashing encoder that records every text it is asked to embed."""

    def __init__(self, dim: int = 16, name: str = "counting") -> None:
        self._inner = HashingEncoder(dim)
        self.name = name
        self.dim = dim
        self.calls: list[list[str]] = []

    @property
    def n_embedded(self) -> int:
        return sum(len(call) for call in self.calls)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        self.calls.append(list(texts))
        return self._inner.encode(texts)
