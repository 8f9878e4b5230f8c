"""BatchingEncoder: requests encoded together never fail because of each other (issue 13)."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from usergroups.embedding import HashingEncoder
from usergroups.errors import DataError
from usergroups.service.online import BatchingEncoder

pytestmark = pytest.mark.timeout(120)

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="")


class StrictEncoder:
    """The hashing encoder behind a tokenizer's UTF-8 check, which lone surrogates fail."""

    name = "strict-hashing"
    dim = 16

    def __init__(self, fail_with: type[Exception] | None = None) -> None:
        self.inner = HashingEncoder(self.dim)
        self.fail_with = fail_with
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(len(texts))
        if self.fail_with is not None:
            raise self.fail_with("the device is gone")
        for text in texts:
            text.encode("utf-8")  # UnicodeEncodeError on "\ud800", as tokenizers do
        return np.asarray(self.inner.encode(texts), dtype=np.float32)


def _encode_concurrently(
    encoder: BatchingEncoder, requests: list[list[str]]
) -> list[np.ndarray | BaseException]:
    barrier = threading.Barrier(len(requests))

    def one(texts: list[str]) -> np.ndarray | BaseException:
        barrier.wait(timeout=30)
        try:
            return encoder.encode(texts)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


def test_a_lone_surrogate_fails_only_its_own_request_in_a_shared_batch() -> None:
    strict = StrictEncoder()
    # a long wait: the 12 requests land in one batch, whose joint encoding then fails
    encoder = BatchingEncoder(strict, max_batch=64, max_wait_s=0.5)
    try:
        requests = [[f"guitar strings {i}", f"drum kit {i}"] for i in range(12)]
        requests[5] = ["fine words", "\ud800"]
        results = _encode_concurrently(encoder, requests)
    finally:
        encoder.close()
    assert max(strict.calls) > 2, f"the requests were never batched together: {strict.calls}"
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [5], results
    error = results[5]
    assert isinstance(error, DataError)
    assert isinstance(error.__cause__, UnicodeEncodeError)
    assert "surrogate" in str(error)
    for i, result in enumerate(results):
        if i != 5:
            assert isinstance(result, np.ndarray)
            expected = strict.inner.encode(requests[i])
            np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


def test_an_encoder_failure_that_is_not_about_the_texts_is_raised_as_it_is() -> None:
    encoder = BatchingEncoder(StrictEncoder(fail_with=RuntimeError), max_wait_s=0.2)
    try:
        results = _encode_concurrently(encoder, [["a b"], ["c d"], ["e f"]])
    finally:
        encoder.close()
    assert all(isinstance(r, RuntimeError) and not isinstance(r, DataError) for r in results)


def test_rows_that_do_not_line_up_with_the_texts_are_an_error_not_a_mix_up() -> None:
    class Short(StrictEncoder):
        def encode(self, texts: list[str]) -> np.ndarray:
            return np.zeros((max(len(texts) - 1, 0), self.dim), dtype=np.float32)

    encoder = BatchingEncoder(Short(), max_wait_s=0.0)
    try:
        with pytest.raises(RuntimeError, match="shape"):
            encoder.encode(["one", "two"])
    finally:
        encoder.close()


def test_issue25_a_per_text_encoder_takes_requests_one_at_a_time() -> None:
    """An encoder that embeds each text on its own gains nothing from batching: its requests
    are encoded one by one (no wait for company, no wait for a batch's slowest text), and a
    bad text still fails its own request only."""
    from usergroups.embedding.text import CleaningEncoder

    class PerText(StrictEncoder):
        per_text = True

        def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            return super().encode(texts)

    strict = PerText()
    # wrapped as the service wraps it; a long wait would batch the 12 requests together
    encoder = BatchingEncoder(CleaningEncoder(strict), max_batch=64, max_wait_s=0.5)
    try:
        assert encoder.one_at_a_time
        requests = [[f"guitar strings {i}", f"drum kit {i}"] for i in range(12)]
        requests[5] = ["fine words", "\ud800"]
        results = _encode_concurrently(encoder, requests)
    finally:
        encoder.close()
    assert sorted(strict.calls) == [2] * 12, strict.calls
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [5] and isinstance(results[5], DataError), results
    other = BatchingEncoder(StrictEncoder())
    assert not other.one_at_a_time
    other.close()


def test_issue25_a_submitted_call_runs_on_the_encoder_thread_in_turn() -> None:
    """With a per-text encoder a whole /assign runs on the encoder thread (submit): its texts
    are encoded there, without a hand-over; calls run in the order they came, an error
    reaches its caller, a call whose caller went away is skipped, a closed encoder takes
    no more."""
    from usergroups.embedding.text import CleaningEncoder

    threads: list[str] = []

    class PerText(StrictEncoder):
        per_text = True

        def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return super().encode(texts)

    encoder = BatchingEncoder(CleaningEncoder(PerText()), max_batch=64, max_wait_s=0.5)
    order: list[int] = []
    gate = threading.Event()

    def assign(i: int) -> tuple[str, np.ndarray]:
        assert request.get() == f"request {i}"  # the caller's context came along
        order.append(i)
        return threading.current_thread().name, encoder.encode([f"drum kit {i}"])

    def submit(i: int) -> Future[tuple[str, np.ndarray]] | None:
        request.set(f"request {i}")
        return encoder.submit(assign, i)

    def fail() -> None:
        raise DataError("texts[0] is empty")

    try:
        blocked = encoder.submit(gate.wait, 30)  # holds the thread while more queue up
        jobs = [contextvars.copy_context().run(submit, i) for i in range(10)]
        failing = encoder.submit(fail)
        skipped = encoder.submit(order.append, -1)
        assert blocked is not None and failing is not None and skipped is not None
        assert skipped.cancel()  # its client disconnected while it waited
        gate.set()
        answers = [job.result(timeout=30) for job in jobs if job is not None]
        with pytest.raises(DataError, match="empty"):
            failing.result(timeout=30)
        expected = np.asarray(HashingEncoder(16).encode(["drum kit 3"]), dtype=np.float32)
        np.testing.assert_array_equal(answers[3][1], expected)
    finally:
        encoder.close()
    assert order == list(range(10))
    assert {name for name, _ in answers} == {"usergroups-encoder"}
    assert set(threads) == {"usergroups-encoder"}
    assert encoder.submit(order.append, 99) is None


def test_issue25_two_threads_take_calls_from_one_queue_and_both_stop() -> None:
    """A process alone on two cores runs a per-text encoder's requests on two threads (one
    scores while the other's text is in the model); a batching encoder keeps one thread,
    which gathers its batches."""
    from usergroups.embedding.text import CleaningEncoder

    class PerText(StrictEncoder):
        per_text = True

        def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            return super().encode(texts)

    encoder = BatchingEncoder(CleaningEncoder(PerText()), n_threads=2)
    both = threading.Barrier(2)

    def meet(i: int) -> tuple[str, np.ndarray]:
        both.wait(timeout=30)  # returns only when two calls run at once
        return threading.current_thread().name, encoder.encode([f"drum kit {i}"])

    try:
        jobs = [encoder.submit(meet, i) for i in range(2)]
        answers = [job.result(timeout=30) for job in jobs if job is not None]
        assert len(answers) == 2 and {name for name, _ in answers} == {"usergroups-encoder"}
        # texts sent from elsewhere are still encoded by those threads
        assert encoder.encode(["one", "two"]).shape == (2, 16)
    finally:
        encoder.close()
    assert not any(thread.is_alive() for thread in encoder._threads)
    batching = BatchingEncoder(StrictEncoder(), n_threads=2)
    assert len(batching._threads) == 1
    batching.close()
    with pytest.raises(ValueError, match="n_threads"):
        BatchingEncoder(StrictEncoder(), n_threads=0)
