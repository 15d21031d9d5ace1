"""The alert-grade judgment on real labelled headlines: event type, AI relevance, entities, speed.

Run as ``python -m bench --only judgment`` (or ``python -m bench.judgment``). Reads
``../shared/data/headlines/`` (skipped if absent). Every figure is cross-validated or measured in this
run next to its baseline:

* event macro-F1 (release, ban, restriction, regulation) per language, from repeated stratified
  5-fold CV in which each training fold chooses its own hyper-parameters: the shipped design (learned
  weights over e5 vectors, character n-grams and lexicon features) against the trigger lexicon alone
  (``enrich.classify``, no learning) and against the learned views without lexicon features;
* ``ai_related`` accuracy from the same folds;
* entity micro-F1 of the catalog linker (title + lead), against the catalog without the entries that
  were added because a labelled headline named them (``from_labels``);
* classify throughput excluding embedding (vectors precomputed, one thread), against the lexicon.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from threadpoolctl import threadpool_limits

from bench.report import SHARED_DATA, Row, skipped
from enrich.entities import CATALOG_PATH, Catalog, find_entities, load_catalog, names_of
from enrich.events_model import build_features, entity_counts_of, load_model
from enrich.events_train import (
    DEFAULT_VIEWS,
    Dataset,
    ViewSpec,
    cross_validate,
    embed,
    lexicon_baseline,
    load_rows,
    macro_f1,
)
from newsradar.settings import get_settings

HEADLINES = SHARED_DATA / "headlines"
NAME = "judgment"
LANGS = ("de", "en", "zh")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _macro_by_lang(data: Dataset, preds: Sequence[np.ndarray]) -> dict[str, float]:
    out = {"all": float(np.mean([macro_f1(data.y, p) for p in preds]))}
    for lang in LANGS:
        m = data.langs == lang
        out[lang] = float(np.mean([macro_f1(data.y[m], p[m]) for p in preds]))
    return out


def event_rows(data: Dataset, quick: bool) -> list[Row]:
    cache = get_settings().cache_dir / "events_train"
    e5, _ = embed(data, cache, threads=2, with_usem3=False)
    feats = build_features(data.titles, data.leads, e5, None)
    repeats = 1 if quick else 2
    _log(f"cross-validating the shipped design (5 folds x {repeats})")
    both = cross_validate(data, feats, DEFAULT_VIEWS, 5, repeats, _log)
    _log("cross-validating the learned views without lexicon features (5 folds x 1)")
    learned = cross_validate(data, feats, ViewSpec(("e5", "char"), ("e5", "char")), 5, 1, _log)
    lexicon = lexicon_baseline(data)
    f_both = _macro_by_lang(data, [p.argmax(axis=1) for p in both.probs])
    f_learned = _macro_by_lang(data, [p.argmax(axis=1) for p in learned.probs])
    f_lex = _macro_by_lang(data, [lexicon])
    sample = f"{len(data.y)} headlines ({', '.join(f'{g} {int(np.sum(data.langs == g))}' for g in LANGS)})"
    rows = [
        Row(
            NAME,
            f"event macro-F1, 5-fold CV, {lang}",
            f_both[lang],
            "F1",
            f_lex[lang],
            "trigger lexicon alone",
            sample,
            f"learned without lexicon features {f_learned[lang]:.3f}; must hold >= "
            + ("0.80" if lang == "all" else "0.75"),
        )
        for lang in ("all", *LANGS)
    ]
    rows.append(
        Row(
            NAME,
            "event macro-F1, learned views + lexicon features vs learned views alone",
            f_both["all"],
            "F1",
            f_learned["all"],
            "e5 + char n-grams, no lexicon",
            sample,
        )
    )
    ai_acc = float(np.mean([np.mean((p >= 0.5) == data.ai) for p in both.p_ai]))
    majority = float(max(np.mean(data.ai), 1 - np.mean(data.ai)))
    rows.append(
        Row(
            NAME,
            "ai_related accuracy, 5-fold CV",
            ai_acc,
            "share",
            majority,
            "majority class",
            sample,
            "must hold >= 0.92",
        )
    )
    return rows


def _entity_counts(rows: Sequence[dict[str, Any]], cat: Catalog) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for row in rows:
        got = set(names_of(find_entities(row["title"], row["lead"], cat=cat), cat))
        gold = set(row["entities"])
        tp, fp, fn = tp + len(got & gold), fp + len(got - gold), fn + len(gold - got)
    return tp, fp, fn


def _f1(counts: tuple[int, int, int]) -> float:
    tp, fp, fn = counts
    return 2 * tp / max(1, 2 * tp + fp + fn)


def _general_knowledge_catalog() -> Catalog:
    """The catalog without entries added because a labelled headline named them."""
    raw = yaml.safe_load(CATALOG_PATH.read_text("utf-8"))
    kept = {
        name: dict(spec or {})
        for name, spec in raw["entities"].items()
        if not (spec or {}).get("from_labels")
    }
    for spec in kept.values():
        if spec.get("parent") not in kept:
            spec.pop("parent", None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entities.yaml"
        path.write_text(yaml.safe_dump({"entities": kept}, allow_unicode=True), "utf-8")
        return load_catalog(path)


def entity_rows(data: Dataset, labels: Sequence[list[str]]) -> list[Row]:
    rows = [
        {"title": t, "lead": lead, "entities": e, "lang": g}
        for t, lead, e, g in zip(data.raw_titles, data.raw_leads, labels, data.langs.tolist(), strict=True)
    ]
    shipped, general = load_catalog(), _general_knowledge_catalog()
    out = []
    for lang in ("all", *LANGS):
        part = [r for r in rows if lang == "all" or r["lang"] == lang]
        out.append(
            Row(
                NAME,
                f"entity micro-F1 (title + lead), {lang}",
                _f1(_entity_counts(part, shipped)),
                "F1",
                _f1(_entity_counts(part, general)),
                "catalog without label-derived entries",
                f"{len(part)} headlines",
                "must hold >= 0.80" if lang == "all" else "",
            )
        )
    return out


def throughput_rows(data: Dataset) -> list[Row]:
    """Features + prediction + entity linking per headline, vectors given: what classify adds to embedding."""
    from enrich.classify import classify

    model = load_model()
    e5, _ = embed(data, get_settings().cache_dir / "events_train", threads=2, with_usem3=False)
    titles, leads = data.titles, data.leads
    n = len(titles)

    def learned() -> None:
        matches = [find_entities(t, lead) for t, lead in zip(titles, leads, strict=True)]
        counts = [entity_counts_of(m) for m in matches]
        model.predict(build_features(titles, leads, e5, None, entity_counts=counts))
        for m in matches:
            names_of(m)

    def lexicon() -> None:
        for t, lead in zip(titles, leads, strict=True):
            classify(t, lead)

    best = {"learned": float("inf"), "lexicon": float("inf")}
    learned()  # warm-up: catalog and model load
    with threadpool_limits(1):  # a one-core figure, like one worker slot
        for _ in range(3):
            for name, fn in (("learned", learned), ("lexicon", lexicon)):
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
    return [
        Row(
            NAME,
            "classify throughput excluding embedding (one thread)",
            n / best["learned"],
            "headlines/s",
            n / best["lexicon"],
            "trigger lexicon alone",
            f"{n} headlines, best of 3",
            "features + prediction + entity linking; must hold >= 500/s",
        )
    ]


def run(quick: bool) -> list[Row]:
    if not HEADLINES.exists():
        return skipped(NAME, f"{HEADLINES} absent")
    data = load_rows(HEADLINES)
    labels = _labels(HEADLINES)
    return [*event_rows(data, quick), *entity_rows(data, labels), *throughput_rows(data)]


def _labels(path: Path) -> list[list[str]]:
    """Entity labels in load_rows' order (same files, same non-empty lines)."""
    import json

    out = []
    for file in sorted(path.glob("*.jsonl")) if path.is_dir() else [path]:
        for line in file.read_text("utf-8").splitlines():
            if line.strip():
                out.append([str(e) for e in json.loads(line).get("entities") or []])
    return out


def main() -> int:
    from bench.report import table

    print(table(run(quick="--quick" in sys.argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
