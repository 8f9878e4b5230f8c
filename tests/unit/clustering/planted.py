"""Users with planted groups: the known right answer for clustering tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def planted_groups(
    sizes: list[int],
    *,
    n_features: int = 32,
    noise: float = 0.5,
    random_state: int = 0,
    directions: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Users scattered around one random unit direction per group, rows L2-normalised.

    Parameters
    ----------
    sizes : list of int
        Users per group; group ``g`` has label ``g``.
    n_features : int
        Dimensions; random directions in 32-d have |cosine| of about 0.2 or less.
    noise : float
        Norm of each user's offset from the group direction (0.5: cosine about 0.9).
    random_state : int
    directions : ndarray of shape (len(sizes), n_features), optional
        Group directions to use instead of random ones.

    Returns
    -------
    X : ndarray of shape (sum(sizes), n_features), float32
    y : ndarray of shape (sum(sizes),), int64
    """
    rng = np.random.default_rng(random_state)
    if directions is None:
        directions = rng.standard_normal((len(sizes), n_features))
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    y = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    offsets = rng.standard_normal((y.size, n_features)) * noise / np.sqrt(n_features)
    X = directions[y] + offsets
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), y


def near_duplicate_directions(
    n_groups: int, *, n_features: int = 32, cosine: float = 0.999, random_state: int = 0
) -> npt.NDArray[np.float64]:
    """Random unit directions where the last one nearly repeats the first (given cosine)."""
    rng = np.random.default_rng(random_state)
    directions = rng.standard_normal((n_groups, n_features))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    first = directions[0]
    other = rng.standard_normal(n_features)
    other -= other.dot(first) * first
    other /= np.linalg.norm(other)
    directions[-1] = cosine * first + np.sqrt(1 - cosine**2) * other
    return directions
