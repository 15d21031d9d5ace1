"""JSON lines in: the one reader of record files for every command (ingest, classify, dedupe).

Each line is judged on its own: a line that is not JSON, or not an object, comes back as a bad line
with its number and the reason, and reading goes on, so one broken record never hides the rest.
Strings come back without characters no encoder takes (lone surrogates, control characters).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from newsradar.text import clean_strings


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
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            yield Line(number, error=f"not JSON ({error.msg} at column {error.colno})")
            continue
        if not isinstance(data, dict):
            yield Line(number, error=f"expected a JSON object, got {type(data).__name__}")
            continue
        yield Line(number, record=clean_strings(data))  # type: ignore[arg-type]


def dumps(record: dict[str, Any]) -> str:
    """One output line (UTF-8 as is: Chinese stays readable)."""
    return json.dumps(record, ensure_ascii=False) + "\n"
