"""EmbeddingCache and CachedEncoder: each distinct text is embedded once, ever."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from embedding_fakes import CountingEncoder

from usergroups.embedding import CachedEncoder, EmbeddingCache, HashingEncoder, text_key
from usergroups.embedding import cache as cache_module
from usergroups.errors import ConfigError

TEXTS = ["good strings", "bad strings", "good strings", "", "capo", "  ", "capo"]


def shard_files(cache_dir: Path, kind: str) -> list[Path]:
    return sorted(cache_dir.glob(f"*/{kind}-*.npy"))


def test_second_run_on_the_same_texts_embeds_nothing(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    first = CachedEncoder(counting, tmp_path).encode(TEXTS)
    assert counting.n_embedded == 3
    again = CachedEncoder(counting, tmp_path)  # a fresh process would open it like this
    second = again.encode(TEXTS)
    assert counting.n_embedded == 3
    assert (again.last_hits, again.last_misses) == (3, 0)
    np.testing.assert_array_equal(first, second)


def test_identical_texts_are_embedded_once_and_blank_texts_never(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    enc = CachedEncoder(counting, tmp_path)
    X = enc.encode(TEXTS)
    assert counting.calls == [["good strings", "bad strings", "capo"]]
    assert (enc.last_hits, enc.last_misses) == (0, 3)
    np.testing.assert_array_equal(X[0], X[2])
    np.testing.assert_array_equal(X[4], X[6])
    np.testing.assert_array_equal(X[[3, 5]], 0.0)


def test_only_missing_texts_are_embedded_and_order_is_restored(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    enc = CachedEncoder(counting, tmp_path)
    enc.encode(["a", "b"])
    texts = ["c", "b", "d", "a", "c"]
    X = enc.encode(texts)
    assert counting.calls[-1] == ["c", "d"]
    assert (enc.last_hits, enc.last_misses) == (2, 2)
    np.testing.assert_allclose(X, HashingEncoder(16).encode(texts), atol=1e-7)


def test_all_blank_input_touches_neither_cache_nor_encoder(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    enc = CachedEncoder(counting, tmp_path / "c")
    X = enc.encode(["", " \n"])
    assert X.shape == (2, 16)
    np.testing.assert_array_equal(X, 0.0)
    assert counting.calls == []
    assert not (tmp_path / "c").exists()


def test_each_call_with_new_texts_appends_one_shard(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    enc = CachedEncoder(counting, tmp_path)
    enc.encode(["a", "b"])
    enc.encode(["a", "b"])
    enc.encode(["c"])
    assert len(shard_files(tmp_path, "keys")) == 2
    assert len(shard_files(tmp_path, "vecs")) == 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_encoders_with_different_names_do_not_share_vectors(tmp_path: Path) -> None:
    a = CountingEncoder(name="model-a@1/seq256")
    b = CountingEncoder(name="model-a@2/seq256")
    CachedEncoder(a, tmp_path).encode(["x"])
    CachedEncoder(b, tmp_path).encode(["x"])
    assert (a.n_embedded, b.n_embedded) == (1, 1)
    assert sorted(EmbeddingCache(tmp_path).names()) == ["model-a@1/seq256", "model-a@2/seq256"]


def test_cache_keys_are_the_exact_text(counting: CountingEncoder, tmp_path: Path) -> None:
    enc = CachedEncoder(counting, tmp_path)
    enc.encode(["Capo", "capo", "capo "])
    assert enc.last_misses == 3


def test_a_truncated_shard_is_skipped_with_a_warning_and_re_embedded(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    CachedEncoder(counting, tmp_path).encode(["a", "b"])
    CachedEncoder(counting, tmp_path).encode(["c"])
    vecs = shard_files(tmp_path, "vecs")[0]
    vecs.write_bytes(vecs.read_bytes()[:100])  # half-written
    enc = CachedEncoder(counting, tmp_path)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        X = enc.encode(["a", "b", "c"])
    assert counting.calls[-1] == ["a", "b"]
    assert (enc.last_hits, enc.last_misses) == (1, 2)
    np.testing.assert_allclose(X, HashingEncoder(16).encode(["a", "b", "c"]), atol=1e-7)
    assert len(list(tmp_path.glob("*/corrupt-*.npy"))) == 2
    # the damaged shard was moved aside: the next run is quiet and embeds nothing
    quiet = CachedEncoder(counting, tmp_path)
    quiet.encode(["a", "b", "c"])
    assert quiet.last_misses == 0


def test_a_garbage_keys_file_is_skipped(counting: CountingEncoder, tmp_path: Path) -> None:
    CachedEncoder(counting, tmp_path).encode(["a"])
    shard_files(tmp_path, "keys")[0].write_bytes(b"not a numpy file at all")
    enc = CachedEncoder(counting, tmp_path)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        enc.encode(["a"])
    assert enc.last_misses == 1


def test_a_shard_with_the_wrong_shape_is_skipped(counting: CountingEncoder, tmp_path: Path) -> None:
    CachedEncoder(counting, tmp_path).encode(["a", "b"])
    np.save(shard_files(tmp_path, "vecs")[0], np.zeros((2, 3), dtype=np.float32))
    enc = CachedEncoder(counting, tmp_path)
    with pytest.warns(RuntimeWarning, match=r"expected float32 \(2, 16\)"):
        enc.encode(["a", "b"])
    assert enc.last_misses == 2


def test_damaged_vector_values_are_re_embedded(counting: CountingEncoder, tmp_path: Path) -> None:
    CachedEncoder(counting, tmp_path).encode(["a", "b"])
    vecs_path = shard_files(tmp_path, "vecs")[0]
    vecs = np.load(vecs_path)
    vecs[1] = np.nan
    np.save(vecs_path, vecs)
    enc = CachedEncoder(counting, tmp_path)
    with pytest.warns(RuntimeWarning, match="damaged"):
        X = enc.encode(["a", "b"])
    assert counting.calls[-1] == ["b"]
    assert np.isfinite(X).all()


def test_temporary_and_orphan_files_are_ignored(counting: CountingEncoder, tmp_path: Path) -> None:
    CachedEncoder(counting, tmp_path).encode(["a"])
    folder = shard_files(tmp_path, "keys")[0].parent
    (folder / ".keys-999.npy.abc.tmp").write_bytes(b"half")
    np.save(folder / "vecs-orphan.npy", np.zeros((1, 16), dtype=np.float32))  # no keys yet
    enc = CachedEncoder(counting, tmp_path)
    enc.encode(["a"])
    assert enc.last_misses == 0


def test_unwritable_cache_warns_but_still_returns_vectors(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    enc = CachedEncoder(counting, blocker / "cache")
    with pytest.warns(RuntimeWarning, match="could not write"):
        X = enc.encode(["a"])
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-6)


def test_shards_written_by_another_cache_object_are_picked_up(
    counting: CountingEncoder, tmp_path: Path
) -> None:
    reader = CachedEncoder(counting, tmp_path)
    reader.encode(["a"])
    CachedEncoder(counting, tmp_path).encode(["b"])  # e.g. another process
    reader.encode(["a", "b"])
    assert reader.last_misses == 0


def _fill(cache_dir: str, start: int) -> None:
    enc = CachedEncoder(HashingEncoder(16), cache_dir)
    for chunk in range(5):
        enc.encode([f"text {start + chunk * 50 + i}" for i in range(50)] + ["shared"])


def test_two_processes_appending_at_once_do_not_corrupt_the_cache(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_fill, args=(str(tmp_path), s)) for s in (0, 1000)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    counting = CountingEncoder(name=HashingEncoder(16).name)
    enc = CachedEncoder(counting, tmp_path)
    texts = [f"text {i}" for i in range(250)] + [f"text {1000 + i}" for i in range(250)]
    X = enc.encode([*texts, "shared"])
    assert counting.calls == []
    np.testing.assert_allclose(X[:-1], HashingEncoder(16).encode(texts), atol=1e-7)
    assert not list(tmp_path.glob("*/corrupt-*"))


def test_embedding_cache_lookup_and_add(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    vectors = HashingEncoder(8).encode(["x", "y"])
    cache.add("enc", [text_key("x"), text_key("y")], vectors)
    found, got = cache.lookup("enc", 8, [text_key("y"), text_key("z"), text_key("x")])
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(got, vectors[[1, 0]])
    assert len(cache) == 2


def test_embedding_cache_rejects_a_dimension_change_under_one_name(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.add("enc", [text_key("x")], HashingEncoder(8).encode(["x"]))
    with pytest.raises(ConfigError, match="name must change"):
        cache.lookup("enc", 16, [text_key("x")])


def test_embedding_cache_clear(counting: CountingEncoder, tmp_path: Path) -> None:
    enc = CachedEncoder(counting, tmp_path)
    enc.encode(["a"])
    enc.cache.clear(counting.name)
    enc.encode(["a"])
    assert enc.last_misses == 1
    enc.cache.clear()
    assert EmbeddingCache(tmp_path).names() == []


def test_folder_names_are_safe_and_distinct(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    a, b = cache.folder("m/x:1"), cache.folder("m_x_1")
    assert a != b
    assert a.parent == tmp_path
    assert all(c.isalnum() or c in "._-" for c in a.name)


def test_wrong_shaped_inner_output_is_an_error(tmp_path: Path) -> None:
    class Broken(CountingEncoder):
        def encode(self, texts, *, show_progress=False):  # type: ignore[no-untyped-def]
            return np.zeros((len(texts), 3), dtype=np.float32)

    with pytest.raises(ConfigError, match=r"expected \(1, 16\)"):
        CachedEncoder(Broken(), tmp_path).encode(["a"])


def test_many_small_shards_are_merged(
    counting: CountingEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "MAX_SMALL_SHARDS", 3)
    enc = CachedEncoder(counting, tmp_path)
    for i in range(10):
        enc.encode([f"text {i}", "shared"])
    assert len(shard_files(tmp_path, "keys")) <= 4
    assert len(shard_files(tmp_path, "keys")) == len(shard_files(tmp_path, "vecs"))
    fresh = CachedEncoder(counting, tmp_path)
    texts = [f"text {i}" for i in range(10)] + ["shared"]
    X = fresh.encode(texts)
    assert fresh.last_misses == 0
    assert counting.n_embedded == 11
    np.testing.assert_allclose(X, HashingEncoder(16).encode(texts), atol=1e-7)


def _fill_merging(cache_dir: str, start: int) -> None:
    cache_module.MAX_SMALL_SHARDS = 2
    enc = CachedEncoder(HashingEncoder(16), cache_dir)
    for chunk in range(12):
        enc.encode([f"text {start + chunk * 5 + i}" for i in range(5)] + ["shared"])


def test_two_processes_merging_at_once_keep_every_vector(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_fill_merging, args=(str(tmp_path), s)) for s in (0, 1000)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    counting = CountingEncoder(name=HashingEncoder(16).name)
    texts = [f"text {i}" for i in range(60)] + [f"text {1000 + i}" for i in range(60)]
    X = CachedEncoder(counting, tmp_path).encode(texts)
    assert counting.calls == []
    np.testing.assert_allclose(X, HashingEncoder(16).encode(texts), atol=1e-7)
    assert not list(tmp_path.glob("*/corrupt-*"))


def test_large_shards_are_memory_mapped(
    counting: CountingEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "MMAP_MIN_BYTES", 0)
    CachedEncoder(counting, tmp_path).encode(["a", "b"])
    enc = CachedEncoder(counting, tmp_path)
    enc.encode(["a"])
    store = enc.cache._stores[counting.name]
    assert isinstance(store._blocks[0], np.memmap)
