"""Issue 25: `import usergroups` and the CLI's start import no heavy library.

A one-sentence `usergroups assign` should answer in about half a second; before this,
`import usergroups` imported pandas (through the data model) and pydantic (through the
config) before any command ran, and `usergroups --help` paid for them too. Each check runs
in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

HEAVY = ("pandas", "pydantic", "scipy", "sklearn", "torch", "transformers", "umap", "plotly")
HEAVY += ("pyarrow", "numba", "onnxruntime", "sentence_transformers")

_PROBE = """
import json, sys
{statement}
heavy = sys.argv[1].split(",")
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
"""


def _heavy_after(
    fresh_python: Callable[..., subprocess.CompletedProcess[str]], statement: str
) -> list[str]:
    done = fresh_python(_PROBE.format(statement=statement), ",".join(HEAVY))
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "statement",
    [
        "import usergroups",
        "from usergroups import DataError, UserGroupsError, __version__",
        "import usergroups.cli.main",
        "from usergroups.cli.main import main; main(['--help'])",
    ],
)
def test_issue25_import_usergroups_pulls_no_heavy_library(
    statement: str, fresh_python: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    assert _heavy_after(fresh_python, statement) == []


def test_issue25_public_names_still_import_and_are_the_real_ones() -> None:
    import usergroups
    from usergroups import Dataset, DiscoveryConfig, FittedState, GroupDiscovery, build_dataset
    from usergroups.config import DiscoveryConfig as FromConfig
    from usergroups.data import Dataset as FromData
    from usergroups.data import build_dataset as build_from_data
    from usergroups.fitted import FittedState as FromFitted
    from usergroups.pipeline import GroupDiscovery as FromPipeline

    assert DiscoveryConfig is FromConfig and GroupDiscovery is FromPipeline
    assert Dataset is FromData and build_dataset is build_from_data
    assert FittedState is FromFitted
    assert set(usergroups.__all__) <= set(dir(usergroups))
    for name in usergroups.__all__:
        assert getattr(usergroups, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = usergroups.Nope  # type: ignore[attr-defined]


def test_issue25_the_config_name_loads_pydantic_only_when_asked(
    fresh_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    loaded = _heavy_after(fresh_python, "from usergroups import DiscoveryConfig")
    assert "pydantic" in loaded and "pandas" not in loaded


@pytest.fixture(scope="module")
def answer_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A saved model with a head, fine groups and EASE, and one of its users; the text
    that `assign` gets is in the embedding cache (the hashing stand-in encoder embeds with
    scipy.sparse; the ONNX encoder of a real model does not)."""
    from usergroups import DiscoveryConfig, GroupDiscovery
    from usergroups.testing import make_planted

    planted = make_planted(n_users=60, n_groups=2, n_items=30, texts_per_user=1, random_state=5)
    root = tmp_path_factory.mktemp("answers")
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:32", "cache_dir": str(root / "cache")},
            "clustering": {"n_groups": 2, "fine_k": 3, "fine_partitions": 2},
            "align": {"method": "head", "dim": 8, "max_epochs": 2},
            "recommend": {"personal": "ease"},
        }
    )
    path = root / "model"
    GroupDiscovery(cfg).fit(planted.dataset).save(path)
    GroupDiscovery.load(path).assign([_NEW_TEXT])
    return str(path), str(planted.dataset.user_ids.ids[0])


_NEW_TEXT = "a new user"


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
@pytest.mark.parametrize("command", ["assign", "recommend"])
def test_issue25_one_answer_imports_no_pandas_scipy_or_pydantic(
    command: str,
    fmt: str,
    answer_model: tuple[str, str],
    fresh_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """`usergroups assign` and `recommend` answer with numpy (and, for a text, the
    encoder): the answer path of `usergroups.answers`, not `GroupDiscovery.load`."""
    path, user = answer_model
    args = ["--text", _NEW_TEXT] if command == "assign" else ["--user", user]
    argv = [command, path, *args, "--format", fmt]
    statement = (
        "from usergroups.cli.main import main\n"
        f"assert main({argv!r}) == 0\n"
        "assert 'usergroups.answers' in sys.modules"
    )
    assert _heavy_after(fresh_python, statement) == []
