"""``DataSource``: where the data is, one rule and one loader for the CLI and the service.

The CLI's input options and the service's ``[refit]`` settings are its fields (issue 21:
"where the data is" was declared twice, and the copies had drifted apart).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

import usergroups.datasets as datasets
from usergroups.data import Dataset
from usergroups.datasets import DataSource, SourceKeys
from usergroups.errors import ConfigError, DataError


def _reviews(path: Path, *, bad_line: bool) -> Path:
    rows = ["user_id,item_id,text", "u1,i1,loved it", "u2,i1,too loud"]
    if bad_line:
        rows.insert(2, "u3,i2,too,many,fields")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            DataSource(dataset_name="ml-100k", texts="t.csv"),
            "pass either dataset_name or interactions/texts, not both",
        ),
        (
            DataSource(dataset_name="ml-100k", interactions="i.csv"),
            "pass either dataset_name or interactions/texts, not both",
        ),
        (DataSource(), "pass dataset_name=NAME or interactions/texts=FILES"),
        (DataSource(items="i.csv", users="u.csv"), "pass dataset_name=NAME"),
        (DataSource(data_dir="/data", on_bad_lines="skip"), "pass dataset_name=NAME"),
    ],
)
def test_check_refuses_both_sources_and_none(source: DataSource, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        source.check()
    with pytest.raises(ConfigError, match=message):
        source.load()  # load checks first, before reading anything


@pytest.mark.parametrize(
    "source",
    [
        DataSource(dataset_name="ml-100k"),
        DataSource(texts="t.csv"),
        DataSource(interactions="i.csv", texts="t.csv", items="m.csv", users="u.csv"),
    ],
)
def test_check_accepts_one_source(source: DataSource) -> None:
    source.check()
    assert source.names_data


def test_a_front_end_spells_the_keys_in_its_messages() -> None:
    class Flags(DataSource):
        keys = SourceKeys("--dataset", "--interactions/--texts", equals=" ")

    with pytest.raises(ConfigError) as both:
        Flags(dataset_name="x", texts="t.csv").check()
    assert str(both.value) == "pass either --dataset or --interactions/--texts, not both"
    with pytest.raises(ConfigError) as none:
        Flags().check()
    assert str(none.value) == "pass --dataset NAME or --interactions/--texts FILES"


def test_files_are_listed_in_field_order() -> None:
    source = DataSource(users="u.csv", texts="t.jsonl", interactions="i.csv")
    assert source.files == ["i.csv", "t.jsonl", "u.csv"]
    assert DataSource(dataset_name="ml-100k").files == []


def test_load_reads_files_with_the_mapping_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_bytes("who,what,body\nu1,i1,café au lait\nu2,i1,bof\n".encode("latin-1"))
    source = DataSource(
        texts=str(path), mapping="user_id=who,item_id=what,text=body", encoding="latin-1"
    )
    ds = source.load()
    assert isinstance(ds, Dataset)
    assert ds.n_users == 2 and "café au lait" in set(ds.texts["text"])


def test_on_bad_lines_reaches_the_reader(tmp_path: Path) -> None:
    path = _reviews(tmp_path / "reviews.csv", bad_line=True)
    with pytest.raises(DataError):
        DataSource(texts=str(path)).load()
    ds = DataSource(texts=str(path), on_bad_lines="skip").load()
    assert ds.report.entries, "the skipped line is counted in the report"
    assert ds.report.entries[0][0] == "reviews.csv"


def test_load_reads_a_registered_dataset_from_data_dir(ml100k_dir: Path) -> None:
    ds = DataSource(dataset_name="ml-100k", data_dir=str(ml100k_dir.parent)).load()
    assert ds.name == "ml-100k" and ds.n_interactions == 5


def test_the_fields_are_the_cli_input_options() -> None:
    from usergroups.cli.common import InputSpec

    assert [f.name for f in fields(InputSpec)] == [f.name for f in fields(DataSource)]


def test_every_public_name_of_the_package_resolves() -> None:
    for name in datasets.__all__:
        assert getattr(datasets, name) is not None, name
    assert callable(datasets.fetch) and datasets.fetch.__name__ == "fetch"
    assert set(datasets.__all__) <= set(dir(datasets))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = datasets.nope  # type: ignore[attr-defined]


def test_importing_data_source_pulls_no_pandas(
    fresh_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """The CLI declares its input options from DataSource at start (issue 25)."""
    done = fresh_python(
        "import json, sys\n"
        "from usergroups.datasets import DataSource\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'numpy'})))"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
