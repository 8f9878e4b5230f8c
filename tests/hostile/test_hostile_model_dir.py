"""A damaged model directory is one line naming the file and "re-run discover" (issue 22).

Each damage of the issue, through ``GroupDiscovery.load``, ``usergroups assign`` and
``usergroups recommend`` (real subprocesses): before, a truncated or bit-flipped arrays.npz
was a ``BadZipFile`` traceback, an empty one printed only "aborted", random bytes spoke of
"pickled data", a list in state.json raised ``AttributeError``, and a NaN in the head or a
label outside the groups loaded and answered with confidence 0.8.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hostile_cli import run_cli

from usergroups import GroupDiscovery
from usergroups.errors import DataError, ModelIntegrityError
from usergroups.persistence import MANIFEST


def _truncate(model: Path) -> None:
    path = model / "arrays.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_bit(model: Path) -> None:
    path = model / "arrays.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _empty(model: Path) -> None:
    (model / "arrays.npz").write_bytes(b"")


def _random_bytes(model: Path) -> None:
    path = model / "arrays.npz"
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _state_list(model: Path) -> None:
    (model / "state.json").write_text(json.dumps([1, 2, 3]))


def _rewrite_arrays(model: Path, name: str, change: Callable[[np.ndarray], None]) -> None:
    with np.load(model / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays[name])
    np.savez_compressed(model / "arrays.npz", **arrays)


def _nan_in_head(model: Path) -> None:
    _rewrite_arrays(model, "align_W", lambda a: a.__setitem__((0, 0), np.nan))


def _label_outside(model: Path) -> None:
    _rewrite_arrays(model, "labels", lambda a: a.__setitem__(0, 7))


DAMAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (damage, file named, what the message says without a manifest)
    "truncated-arrays": (_truncate, "arrays.npz", "is damaged"),
    "bit-flipped-arrays": (_flip_bit, "arrays.npz", "arrays.npz"),
    "empty-arrays": (_empty, "arrays.npz", "is empty"),
    "random-bytes-arrays": (_random_bytes, "arrays.npz", "is not an .npz archive"),
    "state-json-list": (_state_list, "state.json", "holds a JSON list, not an object"),
    "nan-in-head": (_nan_in_head, "arrays.npz", "align_W holds 1 NaN or infinite value"),
    "label-outside-groups": (_label_outside, "arrays.npz", "outside [-1, 2)"),
}


def _damaged(model_copy: Callable[[], Path], damage: str, manifest: bool) -> Path:
    model = model_copy()
    if not manifest:  # a model saved before manifests: the value checks alone must catch it
        (model / MANIFEST).unlink()
    DAMAGES[damage][0](model)
    return model


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_issue22_damaged_model_is_one_integrity_error_on_load(
    damage: str, manifest: bool, model_copy: Callable[[], Path]
) -> None:
    model = _damaged(model_copy, damage, manifest)
    _, file, says = DAMAGES[damage]
    with pytest.raises(ModelIntegrityError) as info:
        GroupDiscovery.load(model)
    message = str(info.value)
    assert isinstance(info.value, DataError)
    assert "\n" not in message and "re-run discover" in message
    assert str(model / file) in message
    if manifest:
        assert "manifest.json" in message, message
    elif damage != "bit-flipped-arrays":  # a flipped bit fails wherever zlib notices it
        assert says in message, message


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_issue22_damaged_model_is_exit_1_and_one_line_in_assign_and_recommend(
    damage: str, model_copy: Callable[[], Path], fitted_model: tuple[Path, str]
) -> None:
    model = _damaged(model_copy, damage, manifest=False)
    user = fitted_model[1]
    for args in (("assign", model, "--text", "a new user"), ("recommend", model, "--user", user)):
        done = run_cli(*args)
        assert done.code == 1, (args, done)
        line = done.error_line
        assert DAMAGES[damage][1] in line and "re-run discover" in line, line


def test_issue22_a_checksum_mismatch_is_refused_by_the_cli(
    model_copy: Callable[[], Path],
) -> None:
    model = _damaged(model_copy, "bit-flipped-arrays", manifest=True)  # same size
    done = run_cli("assign", model, "--text", "a new user")
    assert done.code == 1
    line = done.error_line
    assert "arrays.npz" in line and "SHA-256 in manifest.json" in line, line


def test_issue22_a_model_saved_before_manifests_loads_and_says_so(
    model_copy: Callable[[], Path],
) -> None:
    model = model_copy()
    (model / MANIFEST).unlink()
    gd = GroupDiscovery.load(model)
    assert gd.metrics_["integrity"] == {"manifest": False, "files_verified": 0}
    assert len(gd.assign(["a new user"], n=3)) == 1


def test_a_saved_model_lists_every_file_in_its_manifest(fitted_model: tuple[Path, str]) -> None:
    model = fitted_model[0]
    manifest = json.loads((model / MANIFEST).read_text())
    written = sorted(p.name for p in model.iterdir() if p.is_file() and p.name != MANIFEST)
    assert sorted(manifest["files"]) == written
    for name, entry in manifest["files"].items():
        assert entry["size"] == (model / name).stat().st_size
    gd = GroupDiscovery.load(model)
    assert gd.metrics_["integrity"] == {"manifest": True, "files_verified": len(written)}
