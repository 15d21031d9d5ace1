"""The one JSON-lines reader: fast decoding must not change what comes back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from newsradar.jsonl import read_ahead, read_records

CLEANED = [
    ({"t": "a\ud800b"}, "ab"),  # lone surrogate, escaped
    ({"t": "a\x00b\x1fc"}, "abc"),  # control characters, escaped as \u0000
    ({"t": "a\bb\fc"}, "abc"),  # \b and \f escapes
    ({"t": "a\x7fb"}, "ab"),  # DEL travels raw in JSON
    ({"t": "tab\tand\nnewline stay"}, "tab\tand\nnewline stay"),
    ({"t": "backslash-b \\b stays"}, "backslash-b \\b stays"),
]


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_records_come_back_clean_whichever_way_they_were_escaped(ensure_ascii: bool) -> None:
    lines = [json.dumps(record, ensure_ascii=ensure_ascii) for record, _ in CLEANED]
    got = [line.record["t"] for line in read_records(lines) if line.record]
    assert got == [expected for _, expected in CLEANED]


def test_vectors_and_unicode_round_trip_exactly() -> None:
    record = {"title": "可灵 Kling — Über", "embedding": [0.1, -1e-7, 1 / 3, 2.0], "n": 3, "ok": None}
    (line,) = read_records([json.dumps(record, ensure_ascii=False)])
    assert line.record == record


def test_bad_lines_are_explained_with_their_numbers() -> None:
    lines = ['{"a": 1}', "", "not json", "[1, 2]", '{"a": NaN}']
    got = [(line.number, line.error) for line in read_records(lines)]
    assert got[0] == (1, None)
    assert got[1][0] == 3 and got[1][1] is not None and got[1][1].startswith("not JSON")
    assert got[2] == (4, "expected a JSON object, got list")
    assert got[3][0] == 5 and got[3][1] is None  # Python's reader takes NaN; so does this one


def test_read_ahead_keeps_order_and_runs_in_another_thread() -> None:
    producers: set[str] = set()

    def items() -> Iterator[int]:
        for i in range(1000):
            producers.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(items(), depth=7)) == list(range(1000))
    assert producers == {"read-ahead"}


def test_read_ahead_raises_the_producers_error_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is broken")

    got: list[int] = []
    with pytest.raises(ValueError, match="line 3 is broken"):
        for item in read_ahead(items(), depth=10):
            got.append(item)
    assert got == [1, 2]


def test_read_ahead_stops_its_producer_when_the_consumer_stops() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    for item in read_ahead(items(), depth=5):
        if item == 3:
            break
    assert len(produced) < 20  # bounded by the depth, not the whole input
