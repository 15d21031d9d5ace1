"""JSON lines in: the one reader of record files for every command (ingest, classify, dedupe).

Each line is judged on its own: a line that is not JSON, or not an object, comes back as a bad line
with its number and the reason, and reading goes on, so one broken record never hides the rest.
Strings come back without characters no encoder takes (lone surrogates, control characters).
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from newsradar.text import clean_strings

# The only ways a JSON line can carry a character `clean_strings` removes: an escaped surrogate or
# control character (backslash-u D800, 0000, backslash-b, -f, ...) or a raw DEL. A line without any
# of them is clean as decoded; one with them (or a look-alike, such as an escaped backslash) is
# cleaned. Plain substring tests first: a regular expression over every long line costs more.
_ESCAPED_BAD = re.compile(r"\\u(?:[dD][89abAB]|00[01]|007[fF])")


def _may_need_cleaning(raw: str) -> bool:
    return (
        "\\b" in raw
        or "\\f" in raw
        or "\x7f" in raw
        or ("\\u" in raw and _ESCAPED_BAD.search(raw) is not None)
    )


T = TypeVar("T")

_DECODE = msgspec.json.Decoder().decode  # several times faster than json on vectors


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, counting blank lines, so it matches an editor's line numbers
    record: dict[str, Any] | None = None
    error: str | None = None  # set when the line is bad (record is None)


def read_records(lines: Iterable[str]) -> Iterator[Line]:
    """One ``Line`` per non-blank input line, good or bad, in order."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        fast = True
        try:
            data = _DECODE(raw)
        except (msgspec.DecodeError, UnicodeEncodeError):
            fast = False
            try:  # what the fast decoder refuses, Python's may take (NaN, lone surrogates) or explain
                data = json.loads(raw)
            except json.JSONDecodeError as error:
                yield Line(number, error=f"not JSON ({error.msg} at column {error.colno})")
                continue
        if not isinstance(data, dict):
            yield Line(number, error=f"expected a JSON object, got {type(data).__name__}")
            continue
        if not fast or _may_need_cleaning(raw):
            data = clean_strings(data)
        yield Line(number, record=data)


def dumps(record: dict[str, Any]) -> str:
    """One output line (UTF-8 as is: Chinese stays readable)."""
    return json.dumps(record, ensure_ascii=False) + "\n"


_END = object()


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer.

    Why: reading and validating records is Python work, sending them to Elasticsearch is mostly
    waiting on a socket (the GIL is free then); overlapping the two is what makes a file ingest keep
    up with a raw bulk. An exception in the producer is raised in the consumer, at the item where
    it happened; a consumer that stops early stops the producer."""
    slots: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as error:  # handed to the consumer, never lost in the thread
            put((_END, error))

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join(timeout=5)
