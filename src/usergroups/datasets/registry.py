"""The registry of public datasets: where they come from, what files they hold, how to load them.

>>> [spec.name for spec in list_datasets()][:2]
['ml-100k', 'ml-1m']
>>> get_spec("movielens-100k").folder
'ml-100k'
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from usergroups.data.model import Dataset
from usergroups.datasets.movielens import (
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
)
from usergroups.datasets.reviews import (
    load_amazon_reviews,
    load_douban_comments,
    load_yelp_reviews,
)
from usergroups.errors import DataError, DatasetNotFoundError

__all__ = [
    "DATA_ENV",
    "DatasetSpec",
    "FileSpec",
    "data_dir",
    "dataset_path",
    "get_spec",
    "list_datasets",
    "load_dataset",
    "sha256_file",
    "verify",
]

logger = logging.getLogger(__name__)

DATA_ENV = "USERGROUPS_DATA"
"""Environment variable naming the data directory."""

FolderLoader = Callable[[Path, str], Dataset]
"""``loader(folder, name) -> Dataset``."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    Parameters
    ----------
    name : str
        The file name inside the dataset folder.
    sha256 : str or None
        SHA-256 of the file as stored; None when not known (then it is not verified).
    required : bool
        Whether the loader needs the file (optional files are verified when present).
    sha256_content : str or None
        For a ``.gz`` file, SHA-256 of the decompressed content: a file recompressed
        differently but with the same content also passes :func:`verify`.
    """

    name: str
    sha256: str | None = None
    required: bool = True
    sha256_content: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the library knows about one public dataset.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"ml-100k"``.
    title : str
        One-line description.
    folder : str
        The folder inside the data directory that holds the files.
    homepage : str
        The official page.
    files : tuple of FileSpec
        The files the folder holds, with checksums where known.
    loader : callable
        ``loader(folder, name) -> Dataset``.
    license : str
        The terms of use, in one line.
    download_url : str or None
        Official direct download; None when the data must be fetched by hand.
    archive_root : str or None
        For a zip download, the folder inside the archive that holds ``files``.
    aliases : tuple of str
        Other accepted names.
    notes : str
        Caveats (e.g. why checksums are missing, how to download by hand).
    """

    name: str
    title: str
    folder: str
    homepage: str
    files: tuple[FileSpec, ...]
    loader: FolderLoader
    license: str
    download_url: str | None = None
    archive_root: str | None = None
    aliases: tuple[str, ...] = ()
    notes: str = ""

    @property
    def required_files(self) -> tuple[str, ...]:
        """Names of the files the loader needs."""
        return tuple(f.name for f in self.files if f.required)

    @property
    def has_checksums(self) -> bool:
        """Whether every required file has a recorded SHA-256."""
        return all(f.sha256 for f in self.files if f.required)


def _amazon(filename: str) -> FolderLoader:
    def load(folder: Path, name: str) -> Dataset:
        return load_amazon_reviews(folder / filename, name=name)

    return load


def _ml_100k(folder: Path, name: str) -> Dataset:
    return load_movielens_100k(folder, name=name)


def _ml_1m(folder: Path, name: str) -> Dataset:
    return load_movielens_1m(folder, name=name)


def _ml_latest(folder: Path, name: str) -> Dataset:
    return load_movielens_latest(folder, name=name)


def _yelp(folder: Path, name: str) -> Dataset:
    return load_yelp_reviews(folder / "yelp.csv.gz", name=name)


def _douban(folder: Path, name: str) -> Dataset:
    return load_douban_comments(folder / "comments.csv", name=name)


_GROUPLENS_TERMS = (
    "GroupLens research use: no commercial use and no redistribution without permission; "
    "cite Harper & Konstan, ACM TiiS 5(4), 2015 (see the README in the archive)"
)

_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="ml-100k",
        title="MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies, user attributes",
        folder="ml-100k",
        homepage="https://grouplens.org/datasets/movielens/100k/",
        download_url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        archive_root="ml-100k",
        files=(
            FileSpec("u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
            FileSpec("u.item", "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
            FileSpec("u.user", "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
            FileSpec("u.genre", "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
            FileSpec(
                "u.occupation",
                "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
                required=False,
            ),
            FileSpec(
                "u.info",
                "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
                required=False,
            ),
            FileSpec(
                "README",
                "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
                required=False,
            ),
        ),
        loader=_ml_100k,
        license=_GROUPLENS_TERMS,
        aliases=("movielens-100k", "ml100k", "movielens100k"),
    ),
    DatasetSpec(
        name="ml-1m",
        title="MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,900 movies, user attributes",
        folder="ml-1m",
        homepage="https://grouplens.org/datasets/movielens/1m/",
        download_url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        archive_root="ml-1m",
        files=(
            FileSpec("ratings.dat"),
            FileSpec("movies.dat"),
            FileSpec("users.dat"),
            FileSpec("README", required=False),
        ),
        loader=_ml_1m,
        license=_GROUPLENS_TERMS,
        aliases=("movielens-1m", "ml1m", "movielens1m"),
        notes=(
            "No checksums recorded: ML-1M is not in the shared data, so its files could not "
            "be hashed here; fetch and verify only check that the files exist (verify returns "
            "their SHA-256 so they can be recorded)."
        ),
    ),
    DatasetSpec(
        name="ml-latest-small",
        title="MovieLens latest-small (2018): 100,836 ratings, 3,683 tags, 610 users",
        folder="ml-latest-small",
        homepage="https://grouplens.org/datasets/movielens/latest/",
        download_url="https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        archive_root="ml-latest-small",
        files=(
            FileSpec(
                "ratings.csv", "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"
            ),
            FileSpec(
                "movies.csv", "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"
            ),
            FileSpec(
                "tags.csv", "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d"
            ),
            FileSpec(
                "links.csv",
                "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
                required=False,
            ),
            FileSpec(
                "README.txt",
                "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
                required=False,
            ),
        ),
        loader=_ml_latest,
        license=_GROUPLENS_TERMS,
        aliases=("movielens-latest-small", "ml-small", "ml-latest-sm"),
        notes=(
            "Checksums are of the shared copy (Sept 2018 release, CRLF line endings, sizes "
            "equal to the official release); GroupLens updates 'latest' occasionally, and a "
            "newer release fails verification."
        ),
    ),
    DatasetSpec(
        name="amazon2014:musical-instruments",
        title="Amazon reviews 2014, 5-core, Musical Instruments: 10,261 reviews with text",
        folder="amazon2014-musical-instruments-5core",
        homepage="http://jmcauley.ucsd.edu/data/amazon/",
        download_url=(
            "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
            "reviews_Musical_Instruments_5.json.gz"
        ),
        files=(
            FileSpec(
                "reviews_Musical_Instruments_5.json.gz",
                "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748",
            ),
        ),
        loader=_amazon("reviews_Musical_Instruments_5.json.gz"),
        license=("Research use; cite McAuley et al., SIGIR 2015 and He & McAuley, WWW 2016"),
        aliases=(
            "amazon2014-musical-instruments",
            "amazon-musical-instruments",
            "amazon2014:mi",
            "amazon2014-musical-instruments-5core",
        ),
    ),
    DatasetSpec(
        name="amazon2018:appliances",
        title="Amazon reviews 2018, 5-core, Appliances: 2,277 reviews (183 distinct pairs)",
        folder="amazon2018-appliances-5core",
        homepage="https://nijianmo.github.io/amazon/",
        download_url=(
            "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/Appliances_5.json.gz"
        ),
        files=(
            FileSpec(
                "Appliances_5.json.gz",
                "21a40511d92ff542844eb0e3fae746a91d97f299271a233bb0bcfdf699e65f50",
                sha256_content="86b193bf5338cf5818f97b7bd90a8df68059d6534555de711ae265e5fc4187c1",
            ),
        ),
        loader=_amazon("Appliances_5.json.gz"),
        license="Research use; cite Ni, Li & McAuley, EMNLP 2019",
        aliases=("amazon2018-appliances", "amazon-appliances", "amazon2018-appliances-5core"),
        notes="Heavily duplicated: 2,277 rows hold 183 distinct (user, item) pairs.",
    ),
    DatasetSpec(
        name="yelp-10k",
        title="Yelp Dataset Challenge 2013 (Phoenix) 10,000-review sample",
        folder="yelp-10k",
        homepage="https://www.yelp.com/dataset",
        files=(
            FileSpec(
                "yelp.csv.gz",
                "36b2f251c7179f7b35b6847f1f07e85225c09a4dc76949853fac46b8656bf2a4",
                sha256_content="0713f2d5419af7840e2e1e6c6a5675b982c1fd3ef0440d435fbf50c45f8fd546",
            ),
        ),
        loader=_yelp,
        license=(
            "Yelp Dataset Terms of Use: non-commercial, academic or educational use only; "
            "no redistribution"
        ),
        aliases=("yelp", "yelp10k"),
        notes=(
            "No stable direct download: the 10,000-review 'yelp.csv' teaching sample is "
            "circulated on Kaggle (search 'yelp.csv'); compress it with 'gzip -9 yelp.csv'."
        ),
    ),
    DatasetSpec(
        name="douban-small",
        title="Douban movie moviedata-small: 5,000 Chinese short comments on 111 movies",
        folder="douban-moviedata-small",
        homepage="http://moviedata.csuldw.com/",
        files=(
            FileSpec(
                "comments.csv", "0b19ddb7dc6b59bbabe6454f01becd332dd90a9dc9e858f8d555f90e9f1d0053"
            ),
            FileSpec(
                "ratings.csv",
                "a8139729cd5e94caefa33185256c97b6d9739d2d1b5177240913b9db24a43a91",
                required=False,
            ),
            FileSpec(
                "users.csv",
                "cb7a721aa0be8c180693cc9bcee9ebbdb56d23b7c28a342a129121e7a504a918",
                required=False,
            ),
            FileSpec(
                "movies.csv",
                "c10744a7c0c755f273333e65b5bc6d74cd9952dd4c4d87e03b80fa4813c868c2",
                required=False,
            ),
            FileSpec(
                "person.csv",
                "b5f34acbdd6a2c1424cf631daa682299bf06a014fae33cb893e71e571eb4308a",
                required=False,
            ),
        ),
        loader=_douban,
        license=(
            "Research use only; no commercial use; no redistribution without permission; "
            "cite moviedata.csuldw.com"
        ),
        aliases=("douban", "douban-moviedata-small", "douban-moviedata"),
        notes=(
            "No stable direct download: moviedata-small is published as "
            "docs/dataset/moviedata_small.tar.gz in the csuldw/AntSpider GitHub repository "
            "(an uncompressed tar despite the name); extract its five CSV files."
        ),
    ),
)

_REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in _SPECS}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in _REGISTRY.values():
        for alias in (spec.name, spec.folder, *spec.aliases):
            out[_key(alias)] = spec.name
    return out


def list_datasets() -> list[DatasetSpec]:
    """Every registered dataset, in registry order.

    Examples
    --------
    >>> "yelp-10k" in [spec.name for spec in list_datasets()]
    True
    """
    return list(_REGISTRY.values())


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The :class:`DatasetSpec` for ``name`` or one of its aliases (case-insensitive).

    Raises
    ------
    DataError
        For an unknown name; the message lists the valid names.
    """
    if isinstance(name, DatasetSpec):
        return name
    found = _aliases().get(_key(str(name)))
    if found is None:
        raise DataError(
            f"unknown dataset {name!r}; valid names are {', '.join(_REGISTRY)} "
            "(see usergroups.datasets.list_datasets())"
        )
    return _REGISTRY[found]


def data_dir() -> Path:
    """The data directory: ``$USERGROUPS_DATA``, else ``$XDG_DATA_HOME/usergroups/datasets``
    (``~/.local/share/usergroups/datasets`` when ``XDG_DATA_HOME`` is unset)."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".local" / "share"
    return root / "usergroups" / "datasets"


def dataset_path(name: str | DatasetSpec, data_dir: str | Path | None = None) -> Path:
    """The folder where dataset ``name`` lives (it may not exist yet)."""
    spec = get_spec(name)
    root = Path(data_dir).expanduser() if data_dir is not None else _default_dir()
    return root / spec.folder


def _default_dir() -> Path:
    return data_dir()


def _missing_files(spec: DatasetSpec, folder: Path) -> list[str]:
    return [f for f in spec.required_files if not (folder / f).is_file()]


def _not_found(spec: DatasetSpec, folder: Path, missing: list[str]) -> DatasetNotFoundError:
    where = (
        f"{str(folder)!r} does not exist"
        if not folder.exists()
        else f"{str(folder)!r} lacks {missing}"
    )
    if spec.download_url:
        how = f"run `usergroups datasets fetch {spec.name}`"
    else:
        how = f"download it by hand from {spec.homepage} ({spec.notes})"
    return DatasetNotFoundError(
        f"dataset {spec.name!r} not found: {where}. To get it, {how}; or set "
        f"{DATA_ENV} to a directory that holds the {spec.folder!r} folder"
    )


def load_dataset(name: str | DatasetSpec, data_dir: str | Path | None = None) -> Dataset:
    """Load a registered dataset from the data directory.

    Parameters
    ----------
    name : str or DatasetSpec
        A registered name or alias (see :func:`list_datasets`).
    data_dir : str or Path, optional
        The data directory; default :func:`data_dir` (``$USERGROUPS_DATA``).

    Returns
    -------
    Dataset
        Named after the spec (``dataset.name == spec.name``).

    Raises
    ------
    DatasetNotFoundError
        When the folder or a required file is missing; says where it looked and how to
        get the data.

    Examples
    --------
    >>> ds = load_dataset("ml-100k")  # doctest: +SKIP
    """
    spec = get_spec(name)
    folder = dataset_path(spec, data_dir)
    missing = _missing_files(spec, folder)
    if missing:
        raise _not_found(spec, folder, missing)
    logger.info("loading %s from %s", spec.name, folder)
    return spec.loader(folder, spec.name)


def sha256_file(path: str | Path, *, decompress: bool = False) -> str:
    """SHA-256 (hex) of a file, or of its gzip-decompressed content when ``decompress``."""
    h = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(Path(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file_hash(path: Path, spec: FileSpec) -> str:
    """Return the file's SHA-256; raise :class:`DataError` if it matches neither recorded hash."""
    digest = sha256_file(path)
    if spec.sha256 is None or digest == spec.sha256:
        return digest
    if spec.sha256_content is not None and path.name.endswith(".gz"):
        try:
            content = sha256_file(path, decompress=True)
        except (OSError, EOFError) as exc:
            logger.debug("%s: could not decompress to check its content: %s", path, exc)
            content = ""
        if content == spec.sha256_content:
            logger.info("%s: gzip container differs but the content matches", path)
            return digest
    raise DataError(
        f"checksum mismatch for {str(path)!r}: expected sha256 {spec.sha256}, got {digest}. "
        "The file is damaged, incomplete or a different release; download it again "
        "(fetch(..., force=True)) or replace it with the official file"
    )


def verify(name: str | DatasetSpec, data_dir: str | Path | None = None) -> dict[str, str]:
    """Check every file of dataset ``name`` against the registry's SHA-256.

    Optional files are checked when present; files without a recorded checksum are
    hashed but not checked (logged).

    Returns
    -------
    dict of str to str
        File name to its SHA-256, for every file checked or hashed.

    Raises
    ------
    DatasetNotFoundError
        When a required file is missing.
    DataError
        When a checksum does not match.
    """
    spec = get_spec(name)
    folder = dataset_path(spec, data_dir)
    missing = _missing_files(spec, folder)
    if missing:
        raise _not_found(spec, folder, missing)
    out: dict[str, str] = {}
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            logger.info("%s: optional file %s not present; not verified", spec.name, f.name)
            continue
        out[f.name] = check_file_hash(path, f)
        if f.sha256 is None:
            logger.warning(
                "%s: no checksum recorded for %s (sha256 %s); not verified",
                spec.name,
                f.name,
                out[f.name],
            )
    return out
