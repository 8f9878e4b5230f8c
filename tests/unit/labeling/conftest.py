"""Fixtures of the labelling tests: a fake OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_chat import FakeEndpoint, serve_fake_chat


@pytest.fixture()
def fake_llm() -> Iterator[FakeEndpoint]:
    """A scripted chat endpoint on 127.0.0.1 at a free port (``fake_llm.url``)."""
    with serve_fake_chat() as endpoint:
        yield endpoint
