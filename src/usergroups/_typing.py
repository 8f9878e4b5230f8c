"""Shared type aliases."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

FloatMatrix: TypeAlias = npt.NDArray[np.float32]
"""ndarray of shape (n_rows, n_features), float32."""
FloatVector: TypeAlias = npt.NDArray[np.float64] | npt.NDArray[np.float32]
IntVector: TypeAlias = npt.NDArray[np.int64]
StrArray: TypeAlias = npt.NDArray[np.object_]
