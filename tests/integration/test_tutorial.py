"""docs/tutorial.ipynb runs from top to bottom on real reviews, so it never rots (issue 23).

The notebook is executed with nbclient in a kernel of this very interpreter (a kernel spec
written to a temporary ``JUPYTER_PATH``, so no kernel needs installing and a fresh
``make test`` venv works, whatever other kernels the machine has), with the real default
encoder and a 300-user slice of the Amazon Musical Instruments reviews. Its last cell
prints a JSON summary that the test checks.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from shared_data import require_dataset

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "tutorial.ipynb"
KERNEL = "usergroups-tutorial-test"


def _kernel_spec(root: Path) -> Path:
    """A kernel spec that starts ``sys.executable``: the venv running the tests."""
    folder = root / "kernels" / KERNEL
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "usergroups tests",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return root


def _outputs(nb: Any) -> list[dict[str, Any]]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(out: dict[str, Any]) -> str:
    if out["output_type"] == "stream":
        return str(out["text"])
    data = out.get("data", {})
    return str(data.get("text/plain", "")) + str(data.get("text/html", ""))


@pytest.fixture(scope="module")
def executed(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_dataset(data_dir, "amazon2014-musical-instruments-5core")
    root = tmp_path_factory.mktemp("tutorial")
    monkeypatch = pytest.MonkeyPatch()
    # the kernel inherits this environment: our kernel spec, the data and its own fit cache
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_spec(root / "jupyter")))
    monkeypatch.setenv("USERGROUPS_DATA", str(data_dir))
    monkeypatch.setenv("USERGROUPS_FITS", str(root / "fits"))
    run_dir = root / "cwd"
    run_dir.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    try:
        nbclient.NotebookClient(
            nb,
            kernel_name=KERNEL,
            timeout=600,
            startup_timeout=180,  # a loaded CI machine can be slow to start a kernel
            resources={"metadata": {"path": str(run_dir)}},
        ).execute()
    finally:
        monkeypatch.undo()
    return nb


def test_committed_tutorial_has_no_outputs() -> None:
    """The notebook is committed stripped: outputs would go stale and carry local paths."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_tutorial_runs_and_finds_segments_and_sub_interests(executed: Any) -> None:
    outputs = _outputs(executed)
    assert not [o for o in outputs if o["output_type"] == "error"]
    last = [c for c in executed.cells if c.cell_type == "code"][-1]
    printed = "".join(o["text"] for o in last.outputs if o["output_type"] == "stream")
    summary = json.loads(printed.strip().splitlines()[-1])
    assert summary["n_users"] == 300
    assert summary["n_segments"] >= 2
    assert summary["n_sub_interests"] > summary["n_segments"]
    assert summary["segments_with_sub_interests"] == summary["n_segments"]
    # the user shown "between two segments" really is: two segments share the probability
    membership = summary["between_membership"]
    assert len(membership) == summary["n_segments"]
    assert sum(membership) == pytest.approx(1.0, abs=1e-3)
    assert sorted(membership)[-2] == summary["between_runner_up_confidence"] >= 0.2
    assert summary["known_user_recommendations"] == 5
    assert summary["recommended_already_seen"] == 0
    assert 0 <= summary["new_user_segment"] < summary["n_segments"]
    assert summary["new_user_items"] == 5
    assert summary["reload_same"] is True


def test_tutorial_shows_the_plots_inline_without_local_paths(executed: Any) -> None:
    outputs = _outputs(executed)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # the map and the sizes from write_pngs, the K curve, the two membership bars
    assert len(images) >= 4
    text = "\n".join(_text(o) for o in outputs)
    for local in (str(Path.home()), tempfile.gettempdir(), str(NOTEBOOK.parents[1])):
        assert len(local) < 2 or local not in text, local
