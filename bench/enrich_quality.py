"""Language identification quality: real publisher pages and short titles.

Run as ``python -m bench.enrich_quality`` from the repository root. Language ID is measured on the
real publisher pages in ``../shared/data/extraction`` (skipped if absent) and on the titles of
``tests/fixtures/enrich/devset.jsonl``. Event types and entities are measured on real labelled
headlines by ``bench.judgment``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import Row
from enrich.language import detect_langdetect, detect_language, detect_py3langid

REPO = Path(__file__).resolve().parents[1]
EXTRACTION = REPO.parent / "shared" / "data" / "extraction"
DEVSET = REPO / "tests" / "fixtures" / "enrich" / "devset.jsonl"
LANGS = ("de", "en", "zh")
EVENT_LABELS = ("release", "ban", "restriction", "regulation", "other")
_CHARSET = re.compile(rb"""charset=["']?([A-Za-z0-9_-]+)""")


def decode_html(raw: bytes) -> str:
    """UTF-8 if it decodes; else the declared charset with GB2312/GBK widened to GB18030; else GB18030.

    Several Chinese pages declare gb2312 but use GBK/GB18030 characters, and some declare nothing.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = _CHARSET.search(raw[:5000])
    enc = m.group(1).decode("ascii").lower() if m else "gb18030"
    if enc in ("gb2312", "gbk", "x-gbk", "gb18030", "cp936"):
        enc = "gb18030"
    try:
        return raw.decode(enc)
    except (LookupError, UnicodeDecodeError):
        return raw.decode("gb18030", errors="replace")


def load_pages(root: Path = EXTRACTION) -> list[tuple[str, str, str]]:
    """(true lang, title, text) per page: labelled title/text where present, else from the HTML."""
    from lxml import html as lxml_html

    pages = []
    for line in (root / "index.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        label = json.loads((root.parent / row["json"]).read_text("utf-8"))
        title = (label.get("title") or "").strip()
        text = (label.get("text") or "").strip()
        if not title or not text:
            source = decode_html((root.parent / row["html"]).read_bytes())
            doc = lxml_html.fromstring(source.encode("utf-8"), parser=lxml_html.HTMLParser(encoding="utf-8"))
            for node in doc.xpath("//script|//style|//noscript"):
                node.drop_tree()
            title = title or (doc.findtext(".//title") or "").strip()
            body = doc.find(".//body")
            text = text or re.sub(r"\s+", " ", body.text_content() if body is not None else "").strip()
        pages.append((str(row["lang"]), title, text))
    return pages


def _lang_table(name: str, samples: Sequence[tuple[str, str, str, str | None]]) -> dict[str, float]:
    """Print accuracy per language and method; return overall accuracy per method."""
    methods: dict[str, Callable[[str, str, str | None], str]] = {
        "langdetect": lambda t, x, h: detect_langdetect(t, x),
        "py3langid": lambda t, x, h: detect_py3langid(t, x),
        "combined": lambda t, x, h: detect_language(t, x),
        "combined+hint": lambda t, x, h: detect_language(t, x, h),
    }
    print(f"\n{name} (n={len(samples)})")
    print(f"  {'method':14} " + " ".join(f"{lang:>10}" for lang in LANGS) + f" {'all':>10} {'ms/doc':>7}")
    overall: dict[str, float] = {}
    for method, fn in methods.items():
        right: Counter[str] = Counter()
        total: Counter[str] = Counter()
        start = time.perf_counter()
        for lang, title, text, hint in samples:
            total[lang] += 1
            right[lang] += fn(title, text, hint) == lang
        elapsed = (time.perf_counter() - start) * 1000 / max(1, len(samples))
        cells = " ".join(f"{right[lang] / max(1, total[lang]):>10.3f}" for lang in LANGS)
        overall[method] = sum(right.values()) / max(1, len(samples))
        print(f"  {method:14} {cells} {overall[method]:>10.3f} {elapsed:>7.2f}")
    return overall


def language_report() -> dict[str, tuple[int, dict[str, float]]]:
    """Accuracy per language on real pages (full / title / first 30 chars) and on dev-set titles."""
    out: dict[str, tuple[int, dict[str, float]]] = {}
    if (EXTRACTION / "index.jsonl").exists():
        pages = load_pages()
        print("Language ID on real pages; hint = the page's true language (as a source hint would be)")
        for name, samples in (
            ("real pages, full text", [(lang, t, x, lang) for lang, t, x in pages]),
            ("real pages, title only", [(lang, t or x[:60], "", lang) for lang, t, x in pages]),
            ("real pages, first 30 characters", [(lang, x[:30], "", lang) for lang, _, x in pages]),
        ):
            out[name] = (len(samples), _lang_table(name, samples))
    else:
        print(f"Language ID on real pages: skipped ({EXTRACTION} absent)")
    rows = _devset()
    titles: list[tuple[str, str, str, str | None]] = [(r["lang"], r["title"], "", None) for r in rows]
    out["dev-set titles, no hint"] = (len(titles), _lang_table("dev-set titles, hint withheld", titles))
    return out


def _devset(split: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DEVSET.read_text("utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (fast enough that quick and full are the same)."""
    del quick
    rows = []
    for name, (n, acc) in language_report().items():
        rows.append(
            Row(
                "enrich_quality",
                f"language ID accuracy, {name}",
                acc["combined"],
                "share",
                acc["langdetect"],
                "langdetect",
                f"n={n}; py3langid alone {acc['py3langid']:.3f}",
            )
        )
    return rows


def main() -> int:
    language_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
