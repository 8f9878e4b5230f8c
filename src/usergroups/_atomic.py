"""Write files and directories atomically: to a temporary name, then rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from usergroups.errors import ConfigError, ModelDirectoryError, UserGroupsError

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "check_dir_target",
    "check_file_target",
]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _shown(given: str | Path, path: Path) -> str:
    """``runs/x`` as given, with the absolute path where that says more (``.``, ``..``, ``~``)."""
    text = str(given)
    if text.startswith("~") or os.path.basename(os.path.normpath(text)) in ("", ".", ".."):
        return f"{text} ({path})"
    return text


def check_dir_target(path: str | Path) -> Path:
    """Check that a new directory can replace ``path``; return it absolute, symlinks resolved.

    Every problem is found here, before any work: ``path`` is a file, the filesystem root,
    a mount point, the current folder or one holding it (replacing it would move the folder
    the user is in), the nearest existing folder above it cannot be written (probed by
    creating and removing a folder there, which also catches read-only filesystems and
    paths under ``/proc``, where permission bits say nothing), or ``path`` is an existing
    folder in which no file can be created (probed the same way, with a file: a
    write-protected or immutable folder could be neither emptied nor replaced; issue 22).

    What ``path`` holds is not looked at here; see
    :func:`usergroups.persistence.check_output_dir` for that.

    Raises
    ------
    ModelDirectoryError
        One line: what is wrong with ``path`` and what to pass instead.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> check_dir_target(root / "runs" / "x") == root.resolve() / "runs" / "x"
    True
    """
    target = Path(os.path.realpath(os.path.expanduser(path)))
    shown = _shown(path, target)
    if target.parent == target:
        raise ModelDirectoryError(
            f"cannot write a directory at {shown}: it is the filesystem root; pass a new "
            "folder, e.g. runs/x"
        )
    try:
        cwd = Path(os.path.realpath(Path.cwd()))
    except OSError:  # the current folder was deleted: nothing to protect
        cwd = None
    if cwd is not None and (target == cwd or target in cwd.parents):
        where = "the current folder" if target == cwd else "a folder above the current one"
        raise ModelDirectoryError(
            f"cannot write a directory at {shown}: it is {where}, which would be moved away "
            "and replaced; pass a new folder, e.g. runs/x"
        )
    if os.path.lexists(target):
        if not target.is_dir():
            raise ModelDirectoryError(
                f"cannot write a directory at {shown}: it is a file, not a folder; pass a "
                "folder name"
            )
        if os.path.ismount(target):
            raise ModelDirectoryError(
                f"cannot write a directory at {shown}: it is a mount point, which cannot be "
                "replaced; pass a folder inside it"
            )
        problem = _probe_file(target)
        if problem:
            raise ModelDirectoryError(
                f"cannot write a directory at {shown}: no file can be created in it "
                f"({problem}), so it cannot be replaced; pass a folder you can write to"
            )
    _check_parent(
        target,
        ModelDirectoryError,
        f"cannot write a directory at {shown}",
        "no folder can be created in",
        "a folder you can write to",
    )
    return target


def check_file_target(path: str | Path) -> Path:
    """Check that a file can be written at ``path``; return it absolute, symlinks resolved.

    Refused: ``path`` is a folder, a folder above it is a file, or the nearest existing
    folder above it cannot be written (probed by a real write, as in
    :func:`check_dir_target`). Missing folders above it are created by the writer.

    Raises
    ------
    ConfigError
        One line: what is wrong with ``path`` and what to pass instead.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> check_file_target(root / "out" / "report.html") == root.resolve() / "out" / "report.html"
    True
    """
    target = Path(os.path.realpath(os.path.expanduser(path)))
    shown = _shown(path, target)
    if target.is_dir():
        raise ConfigError(
            f"cannot write the file {shown}: it is a folder; pass a file name, e.g. "
            f"{Path(path) / 'report.html'}"
        )
    _check_parent(
        target,
        ConfigError,
        f"cannot write the file {shown}",
        "nothing can be created in",
        "a path you can write to",
    )
    return target


def _check_parent(
    target: Path, error: type[Exception], what: str, cannot: str, instead: str
) -> None:
    """Raise ``error`` unless the nearest existing folder above ``target`` is a folder in
    which something can be created (probed by a real write, see :func:`_probe`)."""
    existing = next(p for p in target.parents if os.path.lexists(p))
    if not existing.is_dir():
        raise error(
            f"{what}: {existing} is a file, not a folder; pass a path whose parent folders "
            "are folders"
        )
    problem = _probe(existing)
    if problem:
        raise error(f"{what}: {cannot} {existing} ({problem}); pass {instead}")


def _probe(folder: Path) -> str | None:
    """Why nothing can be created in ``folder``, or None if a folder can be.

    A real write, not ``os.access``: root passes every permission check, and a read-only
    filesystem or ``/proc`` refuses writes that the mode bits allow.
    """
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".usergroups-probe-", dir=folder))
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


def _probe_file(folder: Path) -> str | None:
    """Why no file can be created in ``folder``, or None if one can (created, then removed).

    A real write, as in :func:`_probe`: root ignores the mode bits, not an immutable
    attribute or a read-only filesystem.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".usergroups-probe-", suffix=".tmp", dir=folder)
    except OSError as exc:
        return str(exc.strerror or exc)
    os.close(fd)
    os.unlink(name)
    return None


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``.

    The old directory, if any, is moved aside and removed only after the new one is in
    place, so a crash leaves either the complete old or the complete new directory. On
    any exception the temporary directory is removed and the old one, if any, stays.
    ``path`` is checked first with :func:`check_dir_target` (relative paths and ``.``
    are resolved; the current folder is refused).

    Raises
    ------
    ModelDirectoryError
        ``path`` cannot be written or replaced.
    """
    target = check_dir_target(path)
    shown = _shown(path, target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise ModelDirectoryError(
            f"cannot write a directory at {shown}: {exc.strerror or exc} ({exc.filename}); "
            "pass a folder you can write to"
        ) from exc
    old: Path | None = None
    try:
        yield tmp
        if os.path.lexists(target):
            # a fresh empty name: rename(2) may replace an empty directory
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException as exc:
        if old is not None and not os.path.lexists(target):
            os.replace(old, target)  # put the old directory back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, UserGroupsError):
            raise ModelDirectoryError(
                f"cannot write a directory at {shown}: {exc.strerror or exc}; the old one, "
                "if any, is unchanged"
            ) from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
