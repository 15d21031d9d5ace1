"""Text helpers every area needs: which characters are Chinese, and how much of a text is.

One definition of "Han character" (the CJK unified ideographs, their extension A and the
compatibility block), so language detection, extraction, tokenising and query parsing agree on
what counts as Chinese.
"""

from __future__ import annotations

import re

HAN_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN = re.compile(f"[{HAN_CLASS}]")
# Kana too: a Japanese word in a query is matched like a Chinese one (character by character).
CJK = re.compile(f"[\u3040-\u30ff{HAN_CLASS}]")


def has_han(text: str) -> bool:
    return HAN.search(text) is not None


def count_han(text: str) -> int:
    return len(HAN.findall(text))


# Lone surrogates ("\ud800" in JSON is legal, as UTF-8 it is not) and control characters other than
# tab and newline break encoders downstream (the embedding model's C code, JSON to Elasticsearch).
_UNENCODABLE = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """The text without characters no encoder takes (lone surrogates, control characters)."""
    return _UNENCODABLE.sub("", text) if _UNENCODABLE.search(text) else text


_NUMBERS = frozenset({float, int})


def clean_strings(value: object) -> object:
    """``clean_text`` over every string inside JSON-like data (dicts, lists, strings)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        if set(map(type, value)) <= _NUMBERS:  # C-speed: a 384-float vector costs microseconds
            return value  # a vector: nothing to clean, and no need to look at each number twice
        return [clean_strings(item) for item in value]
    return value
