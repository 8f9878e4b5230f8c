"""Model directories (:mod:`.model_dir`) and atomic writes (from :mod:`usergroups._atomic`).

``check_output_dir(path, force=False)`` says, before any work, whether a model can be
written to ``path``; ``save_model`` calls it too.

The model-directory names load lazily, so importing the atomic helpers from here stays
cheap; low layers (the embedding cache, ``config``) import them from ``usergroups._atomic``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from usergroups._atomic import (
    atomic_dir,
    atomic_path,
    atomic_write_bytes,
    check_dir_target,
    check_file_target,
)

if TYPE_CHECKING:
    from usergroups.persistence.model_dir import (
        FORMAT_VERSION,
        MANIFEST,
        MODEL_ENTRIES,
        check_output_dir,
        is_model_dir,
        load_model,
        save_model,
        verify_manifest,
    )

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MODEL_ENTRIES",
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "check_dir_target",
    "check_file_target",
    "check_output_dir",
    "is_model_dir",
    "load_model",
    "save_model",
    "verify_manifest",
]

_LAZY = {"FORMAT_VERSION", "MODEL_ENTRIES", "check_output_dir", "is_model_dir", "load_model"}
_LAZY.update({"save_model", "MANIFEST", "verify_manifest"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from usergroups.persistence import model_dir

        return getattr(model_dir, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
