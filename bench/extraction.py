"""Extraction benchmark: newsradar's ``extract`` against plain trafilatura and peer extractors.

Run ``python -m bench.extraction [--data ../shared/data/extraction] [--json OUT]``; ``python -m bench``
takes its rows from ``run(quick)`` (quick: 30 pages per language).

Scores per language (de/en/zh), each cell with its n:
* text F1 — bag-of-tokens F1 of the body (lower-cased words for de/en, non-space characters for zh,
  which also makes the hard-wrapped Chinese-Web-Content-Extraction-Dataset whitespace-insensitive);
* title exact — equality after whitespace normalisation (only pages whose title is labelled);
* date — same calendar day (either in the page's own offset or converted to the label's offset;
  month-precision labels compare year and month);
* robustness — crashes and empty bodies/titles, over every page including unlabelled ones;
* docs/s — single process, wall-clock time inside the tool.

Peers get the page already decoded by newsradar's ``decode_html`` where they need ``str`` (so the
comparison isolates extraction, not charset guessing); trafilatura gets the raw bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bench.report import Row, skipped

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "extraction"
LANGS = ("de", "en", "zh")


@dataclass
class Result:
    title: str | None
    text: str | None
    published: datetime | date | None


Tool = Callable[[bytes, str | None, str], Result]


# ----------------------------------------------------------------------------------------- tools


def _tool_newsradar(body: bytes, url: str | None, lang: str) -> Result:
    from crawlers.extract import extract

    ex = extract(body, url)
    return Result(ex.title, ex.text, ex.published)


def _parse_any(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    from newsradar.dates import parse_published as parse_date

    return parse_date(str(value))


def _tool_trafilatura(body: bytes, url: str | None, lang: str) -> Result:
    from trafilatura import bare_extraction

    doc = bare_extraction(body, url=url, with_metadata=True, as_dict=True)
    if not isinstance(doc, dict):
        return Result(None, None, None)
    return Result(doc.get("title"), doc.get("text"), _parse_any(doc.get("date")))


def _decoded(body: bytes) -> str:
    from crawlers.charset import decode_html

    return decode_html(body)[0]


def _tool_newspaper(body: bytes, url: str | None, lang: str) -> Result:
    import newspaper

    # fetch_images=False: by default newspaper4k downloads images to size them, i.e. network I/O.
    kwargs: dict[str, Any] = {"fetch_images": False, "memorize_articles": False}
    if lang == "zh":
        kwargs["language"] = "zh"
    art = newspaper.Article(url or "http://example.com/article", **kwargs)
    art.download(input_html=_decoded(body))
    art.parse()
    return Result(art.title, art.text, art.publish_date)


def _tool_readability(body: bytes, url: str | None, lang: str) -> Result:
    import lxml.html
    from readability import Document

    doc = Document(_decoded(body))
    summary = doc.summary(html_partial=True)
    text = lxml.html.fromstring(summary).text_content() if summary.strip() else ""
    return Result(doc.short_title(), text, None)


#: Tools that do not extract dates at all: a 0.000 there would be meaningless.
NO_DATE = {"readability-lxml"}

TOOLS: dict[str, Tool] = {
    "newsradar extract": _tool_newsradar,
    "trafilatura (default)": _tool_trafilatura,
    "newspaper4k": _tool_newspaper,
    "readability-lxml": _tool_readability,
}


# --------------------------------------------------------------------------------------- scoring


def tokens(text: str, lang: str) -> Counter[str]:
    if lang == "zh":
        return Counter(c for c in text if not c.isspace())
    return Counter(re.findall(r"\w+", text.lower()))


def f1(pred: str, gold: str, lang: str) -> float:
    p, g = tokens(pred, lang), tokens(gold, lang)
    if not p or not g:
        return 0.0
    overlap = sum((p & g).values())
    if overlap == 0:
        return 0.0
    prec, rec = overlap / sum(p.values()), overlap / sum(g.values())
    return 2 * prec * rec / (prec + rec)


def norm_title(t: str | None) -> str:
    return re.sub(r"\s+", " ", (t or "").replace("\u00ad", "").replace("\u200b", "")).strip()


def date_match(pred: datetime | date | None, gold: str) -> bool:
    if pred is None:
        return False
    if re.fullmatch(r"\d{4}-\d{2}", gold):
        return (pred.year, pred.month) == (int(gold[:4]), int(gold[5:7]))
    try:
        g = datetime.fromisoformat(gold.replace("Z", "+00:00"))
    except ValueError:
        return False
    if not isinstance(pred, datetime):
        return pred == g.date()
    if pred.date() == g.date():
        return True
    if pred.tzinfo is not None and g.tzinfo is not None:
        return pred.astimezone(g.tzinfo).date() == g.date()
    return False


# ------------------------------------------------------------------------------------------- run


def load(data: Path) -> list[dict[str, Any]]:
    root = data.parent
    pages = []
    for line in (data / "index.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        label = json.loads((root / entry["json"]).read_text(encoding="utf-8"))
        fields = set(label.get("fields_present") or [])
        # fundus names the fields body/publishing_date in fields_present; the values may sit under
        # either name.
        gold_text = (label.get("text") or label.get("body")) if fields & {"text", "body"} else None
        gold_date = (
            (label.get("published") or label.get("publishing_date"))
            if fields & {"published", "publishing_date"}
            else None
        )
        pages.append(
            {
                "set": entry["set"],
                "lang": entry["lang"],
                "path": str(root / entry["html"]),
                "url": entry.get("url") or label.get("url"),
                "text": gold_text,
                "title": label.get("title") if "title" in fields else None,
                "published": gold_date,
                "silver_title": (label.get("silver_gne_output_2019") or {}).get("title"),
            }
        )
    return pages


def subsample(pages: list[dict[str, Any]], per_lang: int) -> list[dict[str, Any]]:
    """At most `per_lang` pages per language, evenly spread over the list (so over every set)."""
    out: list[dict[str, Any]] = []
    for lang in LANGS:
        mine = [p for p in pages if p["lang"] == lang]
        step = max(1, len(mine) / per_lang)
        out.extend(mine[int(i * step)] for i in range(min(per_lang, len(mine))))
    return out


def evaluate_tools(data: Path, tools: dict[str, Tool], per_lang: int | None = None) -> dict[str, Any]:
    pages = load(data)
    if per_lang:
        pages = subsample(pages, per_lang)
    acc: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    per_doc: list[dict[str, Any]] = []
    for page in pages:
        body = Path(page["path"]).read_bytes()
        for name, tool in tools.items():
            cell = acc[(page["lang"], name)]
            start = time.perf_counter()
            try:
                res = tool(body, page["url"], page["lang"])
                crashed = False
            except Exception:
                res, crashed = Result(None, None, None), True
                cell["errors"].append(f"{page['path']}: {traceback.format_exc(limit=1).splitlines()[-1]}")
            cell["time"].append(time.perf_counter() - start)
            cell["crash"].append(crashed)
            cell["empty_text"].append(not (res.text or "").strip())
            cell["empty_title"].append(not (res.title or "").strip())
            doc: dict[str, Any] = {"tool": name, "path": page["path"], "lang": page["lang"]}
            if page["text"]:
                doc["f1"] = f1(res.text or "", page["text"], page["lang"])
                cell["f1"].append(doc["f1"])
            if page["title"]:
                doc["title_ok"] = norm_title(res.title) == norm_title(page["title"])
                doc["title"] = res.title
                cell["title"].append(doc["title_ok"])
            if page["silver_title"]:
                cell["silver_title"].append(norm_title(res.title) == norm_title(page["silver_title"]))
            if page["published"] and name not in NO_DATE:
                doc["date_ok"] = date_match(res.published, page["published"])
                doc["date"] = str(res.published)
                cell["date"].append(doc["date_ok"])
            per_doc.append(doc)

    summary: dict[str, Any] = {}
    for (lang, name), cell in sorted(acc.items()):

        def mean(xs: list[Any]) -> float | None:
            return sum(xs) / len(xs) if xs else None

        summary.setdefault(lang, {})[name] = {
            "text_f1": mean(cell["f1"]),
            "text_n": len(cell["f1"]),
            "title_exact": mean(cell["title"]),
            "title_n": len(cell["title"]),
            "silver_title": mean(cell["silver_title"]),
            "silver_title_n": len(cell["silver_title"]),
            "date_same_day": mean(cell["date"]),
            "date_n": len(cell["date"]),
            "crashes": sum(cell["crash"]),
            "empty_text": sum(cell["empty_text"]),
            "empty_title": sum(cell["empty_title"]),
            "pages": len(cell["crash"]),
            "docs_per_s": len(cell["time"]) / sum(cell["time"]) if sum(cell["time"]) else None,
            "errors": cell["errors"][:5],
        }
    return {"summary": summary, "per_doc": per_doc}


def _fmt(value: float | None, n: int) -> str:
    return "—" if value is None or n == 0 else f"{value:.3f} ({n})"


def print_tables(summary: dict[str, Any]) -> None:
    for lang in LANGS:
        if lang not in summary:
            continue
        print(f"\n### {lang}\n")
        print(
            "| tool | text F1 (n) | title exact (n) | date same-day (n) | GNE-silver title (n) "
            "| crashes / empty text / empty title (pages) | docs/s |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, s in summary[lang].items():
            print(
                f"| {name} | {_fmt(s['text_f1'], s['text_n'])} | {_fmt(s['title_exact'], s['title_n'])} | "
                f"{_fmt(s['date_same_day'], s['date_n'])} | "
                f"{_fmt(s['silver_title'], s['silver_title_n'])} | "
                f"{s['crashes']} / {s['empty_text']} / {s['empty_title']} ({s['pages']}) | "
                f"{s['docs_per_s']:.1f} |"
            )


def _available_tools() -> dict[str, Tool]:
    tools = dict(TOOLS)
    try:
        import newspaper  # noqa: F401
    except ImportError:
        print("newspaper4k not installed: skipping that peer", file=sys.stderr)
        tools.pop("newspaper4k", None)
    return tools


def _pooled(summary: dict[str, Any], tool: str, key: str, n_key: str) -> tuple[float | None, int]:
    """Micro-average of one score over the languages."""
    total = count = 0.0
    for lang in summary.values():
        cell = lang.get(tool)
        if cell and cell[key] is not None and cell[n_key]:
            total += cell[key] * cell[n_key]
            count += cell[n_key]
    return (total / count if count else None), int(count)


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench`: newsradar vs plain trafilatura per language, peers pooled."""
    if not (DEFAULT_DATA / "index.jsonl").is_file():
        return skipped("extraction", f"{DEFAULT_DATA} absent")
    warnings.filterwarnings("ignore")
    per_lang = 30 if quick else None
    summary = evaluate_tools(DEFAULT_DATA, _available_tools(), per_lang)["summary"]
    ours, base = "newsradar extract", "trafilatura (default)"
    sample = f"{per_lang} pages per language" if per_lang else "all pages"
    rows = []
    for lang in LANGS:
        cells = summary.get(lang, {})
        if ours not in cells:
            continue
        me, tr = cells[ours], cells[base]
        for figure, key, n_key in (
            ("text F1", "text_f1", "text_n"),
            ("title exact", "title_exact", "title_n"),
            ("date same day", "date_same_day", "date_n"),
        ):
            if me[n_key]:
                rows.append(
                    Row(
                        "extraction",
                        f"{figure} {lang}",
                        me[key],
                        "share",
                        tr[key],
                        "trafilatura",
                        f"n={me[n_key]}",
                    )
                )
    for peer in ("newspaper4k", "readability-lxml"):
        value, n = _pooled(summary, peer, "text_f1", "text_n")
        base_value, _ = _pooled(summary, base, "text_f1", "text_n")
        if n:
            rows.append(
                Row(
                    "extraction",
                    f"peer text F1, all languages: {peer}",
                    value,
                    "share",
                    base_value,
                    "trafilatura",
                    f"n={n}",
                )
            )
    value, n = _pooled(summary, ours, "text_f1", "text_n")
    rows.append(
        Row(
            "extraction",
            "text F1, all languages",
            value,
            "share",
            _pooled(summary, base, "text_f1", "text_n")[0],
            "trafilatura",
            f"n={n}",
        )
    )
    pages = sum(cells[ours]["pages"] for cells in summary.values() if ours in cells)
    seconds = sum(
        cells[ours]["pages"] / cells[ours]["docs_per_s"]
        for cells in summary.values()
        if ours in cells and cells[ours]["docs_per_s"]
    )
    base_seconds = sum(
        cells[base]["pages"] / cells[base]["docs_per_s"]
        for cells in summary.values()
        if base in cells and cells[base]["docs_per_s"]
    )
    rows.append(
        Row(
            "extraction",
            "extraction speed",
            pages / seconds if seconds else None,
            "pages/s",
            pages / base_seconds if base_seconds else None,
            "trafilatura",
            f"{sample}, {pages} pages",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory holding index.jsonl")
    ap.add_argument("--json", type=Path, help="write summary and per-page scores here")
    ap.add_argument("--tools", nargs="*", choices=list(TOOLS), help="subset of tools (default: all)")
    args = ap.parse_args(argv)
    if not (args.data / "index.jsonl").is_file():
        print(f"extraction benchmark skipped: no index.jsonl under {args.data}", file=sys.stderr)
        return 0
    tools = {k: v for k, v in _available_tools().items() if not args.tools or k in args.tools}
    warnings.filterwarnings("ignore")
    result = evaluate_tools(args.data, tools)
    print_tables(result["summary"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
