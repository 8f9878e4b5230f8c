"""The event store contract, run against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading

import pytest

from usergroups.errors import EventConflictError, EventStoreError
from usergroups.service.events import NewEvent, open_event_store


class EventStoreContract:
    """Every store mixes these in; ``url`` is the fixture that names a fresh store."""

    @pytest.fixture
    def store(self, url: str):
        s = open_event_store(url)
        yield s
        s.close()

    def test_append_stores_in_order_with_increasing_seq(self, store) -> None:
        res = store.append([NewEvent(f"e{i}", "u", f"i{i}", 4.0, "nice", 1.0) for i in range(5)])
        assert [r.status for r in res] == ["stored"] * 5
        seqs = [r.seq for r in res]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        got = store.events_since(0)
        assert [e.event_id for e in got] == [f"e{i}" for i in range(5)]
        assert got[0].rating == 4.0 and got[0].text == "nice" and got[0].timestamp == 1.0
        assert store.count() == 5 and store.last_seq() == seqs[-1]
        assert [e.event_id for e in store.events_upto(seqs[1])] == ["e0", "e1"]
        assert [e.event_id for e in store.events_since(seqs[3])] == ["e4"]

    def test_same_event_twice_is_a_duplicate_stored_once(self, store) -> None:
        ev = NewEvent("dup", "u", "i", None, None, None)
        first = store.append([ev])[0]
        again = store.append([ev, ev])
        assert [r.status for r in again] == ["duplicate", "duplicate"]
        assert {r.seq for r in again} == {first.seq}
        assert store.count() == 1

    def test_conflicting_content_rolls_back_the_whole_batch(self, store) -> None:
        store.append([NewEvent("a", "u", "i1")])
        with pytest.raises(EventConflictError, match="different content"):
            store.append([NewEvent("b", "u", "i2"), NewEvent("a", "u", "OTHER")])
        assert store.count() == 1
        assert [e.event_id for e in store.events_since(0)] == ["a"]

    def test_data_outlives_the_connection(self, url: str) -> None:
        s = open_event_store(url)
        s.append([NewEvent("kept", "u", "i", text="héllo ✓")])
        s.close()
        s = open_event_store(url)
        try:
            assert [(e.event_id, e.text) for e in s.events_since(0)] == [("kept", "héllo ✓")]
        finally:
            s.close()

    def test_concurrent_writers_of_the_same_ids_store_each_once(self, url: str) -> None:
        stores = [open_event_store(url) for _ in range(4)]
        errors: list[BaseException] = []

        def write(s) -> None:
            try:
                for i in range(25):
                    s.append([NewEvent(f"c{i}", "u", f"i{i}")])
            except BaseException as exc:  # collected and re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert not errors
            assert stores[0].count() == 25
        finally:
            for s in stores:
                s.close()


class TestSQLiteEventStore(EventStoreContract):
    @pytest.fixture
    def url(self, tmp_path) -> str:
        return f"sqlite:///{tmp_path}/events.sqlite3"

    def test_wal_mode_and_full_sync(self, store) -> None:
        conn = store._conn.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url


def test_bad_urls_raise_store_errors(tmp_path) -> None:
    with pytest.raises(EventStoreError, match="sqlite:///PATH or postgresql"):
        open_event_store("mysql://x/y")
    with pytest.raises(EventStoreError, match="cannot open"):
        open_event_store("postgresql://nobody:secret@127.0.0.1:1/none")
