"""A loaded model answers `assign`, `recommend` and `groups` without the fitting stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted

HEAVY = ("sklearn", "torch", "umap", "numba", "transformers", "sentence_transformers")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = make_planted(n_users=80, n_groups=2, n_items=30, texts_per_user=1, random_state=5)
    cfg = DiscoveryConfig.model_validate(
        {
            "embedding": {"model": "hashing:32", "use_cache": False},
            "clustering": {"n_groups": 2},
            "align": {"method": "head", "dim": 8, "max_epochs": 2},
        }
    )
    out = tmp_path_factory.mktemp("light") / "model"
    GroupDiscovery(cfg).fit(planted.dataset).save(out)
    user = str(planted.dataset.user_ids.ids[0])
    (out.parent / "user.json").write_text(json.dumps({"user": user}))
    return out


@pytest.mark.parametrize(
    "args",
    [
        ["assign", "{model}", "--text", "a new user", "-n", "3"],
        ["groups", "{model}"],
        ["recommend", "{model}", "--user", "{user}", "-n", "3"],
    ],
)
def test_the_cli_answers_without_importing_the_fitting_stack(
    model_dir: Path, args: list[str]
) -> None:
    user = json.loads((model_dir.parent / "user.json").read_text())["user"]
    argv = [a.format(model=model_dir, user=user) for a in args]
    code = (
        "import sys\n"
        "from usergroups.cli.main import main\n"
        f"rc = main({argv!r})\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print('HEAVY', heavy, rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    last = [line for line in done.stdout.splitlines() if line.startswith("HEAVY")][-1]
    assert last == "HEAVY [] 0", done.stdout[-2000:]
