"""``synset_pass.read_ahead``: the replay's votes read by a thread, in order, bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from synset_builder.consensus.synset_pass import read_ahead


def test_items_arrive_in_order_and_all_of_them() -> None:
    assert list(read_ahead(iter(range(50)), depth=2)) == list(range(50))


def test_the_reader_stays_at_most_depth_ahead() -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            pulled.append(i)
            yield i

    stream = read_ahead(source(), depth=3)
    assert next(stream) == 0
    time.sleep(0.3)  # time for the thread to run ahead as far as it may
    # 0 consumed, 3 waiting, 1 in the thread's hand waiting for room
    assert len(pulled) <= 1 + 3 + 1
    stream.close()


def test_a_source_error_reaches_the_consumer() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("the database went away")

    stream = read_ahead(source())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="went away"):
        next(stream)


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()

    stream = read_ahead(source(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "consensus-read-ahead"]
