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
