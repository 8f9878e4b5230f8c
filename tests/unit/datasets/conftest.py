"""Fixtures for the dataset tests: tiny generated files in every public format, no network."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test here that tries to reach a host other than this machine."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOCAL_HOSTS:
            raise RuntimeError(f"tests must not touch the network (connect to {address!r})")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOCAL_HOSTS and host is not None:
            raise RuntimeError(f"tests must not touch the network (resolve {host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def write_jsonl(
    path: Path, records: list[dict[str, Any]], *, extra_lines: Sequence[str] = ()
) -> Path:
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def jsonl_writer() -> Callable[..., Path]:
    """``jsonl_writer(path, records, extra_lines=[...])`` writes (gzip'd for .gz) JSON lines."""
    return write_jsonl


ML100K_GENRE = (
    "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
    "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
    "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n"
)


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


@pytest.fixture
def ml100k_dir(tmp_path: Path) -> Path:
    """A tiny MovieLens 100K folder: 3 users, 3 movies, latin-1 titles, 5 ratings."""
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text(
        "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t878542960\n"
        "3\t3\t1\t889751712\n3\t1\t2\t875071561\n",
        encoding="ascii",
    )
    items = [
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|{_flags(3, 4, 5)}",
        f"2|GoldenEye (1995)|01-Jan-1995||http://us.imdb.com/M/x|{_flags(1, 2, 16)}",
        f"3|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/y|{_flags(0)}",
    ]
    (d / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (d / "u.user").write_text(
        "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|T8H1N\n", encoding="ascii"
    )
    (d / "u.genre").write_text(ML100K_GENRE, encoding="ascii")
    return d
