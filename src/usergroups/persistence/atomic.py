"""Atomic writes, kept under this name for callers: they live in :mod:`usergroups._atomic`.

The helpers moved to a bottom module so that low layers (the embedding cache,
``config.save_config``) can write atomically without importing ``persistence``, which
sits above them (``persistence`` → ``fitted`` → ``profiling`` → ``embedding``).
"""

from __future__ import annotations

from usergroups._atomic import (
    atomic_dir,
    atomic_path,
    atomic_write_bytes,
    check_dir_target,
    check_file_target,
)

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "check_dir_target",
    "check_file_target",
]
