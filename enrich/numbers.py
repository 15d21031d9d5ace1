"""Numbers as language-independent evidence that two articles report the same story.

"72 billion parameters", "72 Milliarden Parameter" and "720亿参数" are one fact; so are "40%",
"40 Prozent" and "四成". Each mention is normalised to a value string ("7.2e+10", "40%") so that
coverage in different languages can be compared by set overlap. Years and small counts are dropped:
they are shared by unrelated stories of the same week and would only add noise.
"""

from __future__ import annotations

import re

# Latin scale words (lower case) → multiplier. German "Billion" is 10^12, unlike English "billion".
_EN_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "millions": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "billions": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "trillions": 1e12,
    "tn": 1e12,
}
_DE_SCALES = {
    "tausend": 1e3,
    "million": 1e6,
    "millionen": 1e6,
    "mio": 1e6,
    "mio.": 1e6,
    "milliarde": 1e9,
    "milliarden": 1e9,
    "mrd": 1e9,
    "mrd.": 1e9,
    "billion": 1e12,
    "billionen": 1e12,
}
_PERCENT_WORDS = {"%", "percent", "per cent", "prozent", "pct"}
_ZH_SCALES = {
    "万亿": 1e12,
    "千亿": 1e11,
    "百亿": 1e10,
    "亿": 1e8,
    "千万": 1e7,
    "百万": 1e6,
    "万": 1e4,
    "千": 1e3,
}
_ZH_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}

_SCALE_WORDS = sorted({*_EN_SCALES, *_DE_SCALES, *_PERCENT_WORDS}, key=len, reverse=True)
_LATIN_NUMBER = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:[.,\u202f\u00a0']\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"(?:\s?(" + "|".join(re.escape(w) for w in _SCALE_WORDS) + r")(?![A-Za-zäöüß]))?"
    r"(?!\w)",
    re.IGNORECASE,
)
_ZH_ARABIC = re.compile(r"(?<![A-Za-z0-9_.])(\d+(?:[.,]\d+)*)\s?(万亿|千亿|百亿|亿|千万|百万|万|成|%|％)?")
_ZH_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百千万亿]{2,}|[一二两三四五六七八九十]成")
_ZH_DATE_UNITS = set("年月日号时点")
_ZH_PERCENT = re.compile(r"百分之([零〇一二两三四五六七八九十百]+|\d+(?:\.\d+)?)")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _keep(value: float, scaled: bool) -> bool:
    """Drop years and small counts, which unrelated stories of the same week share."""
    if scaled:
        return value > 0
    if value.is_integer() and 1900 <= value <= 2100:
        return False
    return value >= 10 or not value.is_integer()


def _parse_latin(digits: str, lang: str | None) -> float | None:
    raw = digits.replace("\u202f", "").replace("\u00a0", "").replace("'", "")
    if lang == "de":
        thousands, decimal = ".", ","
    else:
        thousands, decimal = ",", "."
    # "1,000" in German is one and "1.000" in English is one: only a group of exactly three digits
    # after a single separator that is not the language's decimal mark counts as thousands.
    if raw.count(thousands) and re.fullmatch(
        r"\d{1,3}(?:" + re.escape(thousands) + r"\d{3})+", raw.split(decimal)[0]
    ):
        raw = raw.replace(thousands, "")
    raw = raw.replace(decimal, ".")
    if raw.count(".") > 1 or raw.count(",") > 0:
        raw = raw.replace(",", ".")
        if raw.count(".") > 1:
            return None
    try:
        return float(raw)
    except ValueError:
        return None


def _zh_numeral_value(text: str) -> float | None:
    """Chinese numerals up to 万/亿 ("七百二十亿" → 7.2e10, "十四" → 14); None when not a number."""
    total = 0.0
    section = 0.0
    digit: float | None = None
    for char in text:
        if char in _ZH_DIGITS:
            digit = float(_ZH_DIGITS[char])
        elif char in _ZH_UNITS:
            section += (digit if digit is not None else 1.0) * _ZH_UNITS[char]
            digit = None
        elif char in ("万", "亿"):
            scale = 1e4 if char == "万" else 1e8
            section += digit or 0.0
            if char == "亿":
                total = (total + section) * scale
            else:
                total += section * scale
            section, digit = 0.0, None
        else:
            return None
    value = total + section + (digit or 0.0)
    return value if value > 0 else None


def extract_numbers(text: str, lang: str | None = None) -> set[str]:
    """Normalised numbers mentioned in `text` (values as strings, percentages with a "%")."""
    found: set[str] = set()
    if lang == "zh":
        for m in _ZH_PERCENT.finditer(text):
            body = m.group(1)
            value = float(body) if body[0].isdigit() else _zh_numeral_value(body)
            if value is not None:
                found.add(_fmt(value) + "%")
        text = _ZH_PERCENT.sub(" ", text)
        for m in _ZH_ARABIC.finditer(text):
            value = _parse_latin(m.group(1), "en")
            if value is None:
                continue
            unit = m.group(2)
            if unit in ("%", "％"):
                found.add(_fmt(value) + "%")
            elif unit == "成":
                found.add(_fmt(value * 10) + "%")
            elif unit:
                found.add(_fmt(value * _ZH_SCALES[unit]))
            elif _keep(value, scaled=False) and text[m.end() : m.end() + 1] not in _ZH_DATE_UNITS:
                found.add(_fmt(value))
        for m in _ZH_NUMERAL.finditer(text):
            token = m.group(0)
            if token.endswith("成") and len(token) == 2:
                found.add(_fmt(_ZH_DIGITS.get(token[0], 10) * 10.0) + "%")
                continue
            if not any(c in "十百千万亿" for c in token) or all(c in "万亿千百" for c in token):
                continue  # "一一", "万亿" alone: not a quantity
            value = _zh_numeral_value(token)
            if value is not None and _keep(value, scaled=value >= 1e4):
                found.add(_fmt(value))
    for m in _LATIN_NUMBER.finditer(text):
        value = _parse_latin(m.group(1), lang)
        if value is None:
            continue
        word = (m.group(2) or "").lower()
        if word in _PERCENT_WORDS:
            found.add(_fmt(value) + "%")
            continue
        scales = _DE_SCALES if lang == "de" else _EN_SCALES
        scale = scales.get(word) or _EN_SCALES.get(word) or _DE_SCALES.get(word)
        if scale and (len(word) > 1 or m.group(0)[-2:-1] != " "):
            found.add(_fmt(value * scale))
        elif _keep(value, scaled=False):
            found.add(_fmt(value))
    return found
