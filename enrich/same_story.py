"""The learned same-story decision, and story assignment that does not chain. Numpy only.

Why learned: the earlier rule (embedding *rank* among stories plus hand-weighted entity, number and
code agreement) lost to a plain cosine threshold on human-judged pairs (SemEval-2022 task 8). A small
logistic regression over cheap pair features, trained on those pairs with grouped cross-validation
(:mod:`enrich.same_story_train`, ``newsradar dedupe train``), beats the tuned cosine on every language
pair and gives a calibrated probability, so one threshold means the same in every language pair.

The features: the cosine of the pipeline's one e5 vector (title + lead) carries most of the signal,
but cross-lingual pairs of one story sit about 0.03 lower than same-language ones, so the model gets
the language relation too; name-like words shared within one language add evidence the embedding
misses. Two fixed priors encode what the training pairs (general news) cannot teach: two titles with
different model/chip codes ("H20" vs "B30") or different catalogued protagonists (orgs, models,
products) are different stories however close their embeddings are.

Features work on :class:`Fingerprint` objects (sets and a vector, no text), so a 2 MB body costs what
a title costs here; the text is clipped once, when the record is made (``enrich.dedupe``). The
cosine with a stored candidate is passed in from the kNN query's score, so stored vectors are never
shipped back to the client.

No chaining (:func:`choose_story`): an article joins the story it matches best, and a story's score
is the mean of its best member's probability and the mean over its candidate members, so one close
member at the far end of a drifting story does not pull the article in. Two existing stories are
merged only on strong evidence from both sides; the merge is recorded as a redirect (:class:`Redirects`)
so the absorbed story's id stays valid.

The model is a JSON file (no pickle) shipped in ``enrich/models/``; prediction is numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

MODEL_FORMAT = "newsradar-same-story/1"
MODEL_PATH = Path(__file__).with_name("models") / "same_story.json"

#: Every feature :func:`pair_features` can compute, in column order; a model file says which it uses.
FEATURES = (
    "cos",  # cosine of the pipeline's one e5 vector (title + lead)
    "cross",  # 1 when the two articles are in different languages
    "names_shared",  # log(1 + name-like words in common), same language only (else 0)
    "names_overlap",  # share of the shorter name list both use (same language, both >= 3 names)
    "numbers_shared",  # informative numbers in common, capped at 3
    "number_conflict",  # both quote big figures, none the same
    "codes_shared",  # model codes in common, capped at 2
    "salient_shared",  # salient entities in common, capped at 3
    "entity_jaccard",  # Jaccard of all catalog entities (0 when neither has any)
    "entity_conflict",  # both headline catalog orgs/models/products and share none
    "code_conflict",  # both headline model/chip codes and share none ("H20" vs "B30")
    "jaccard",  # MinHash estimate of word-pair shingle Jaccard, same language only (else 0)
)
COLUMN = {name: i for i, name in enumerate(FEATURES)}
#: The record fields (``enrich.dedupe.Record``) each feature reads, beyond vector, language and time:
#: what a state must return for every candidate.
FEATURE_FIELDS: dict[str, tuple[str, ...]] = {
    "names_shared": ("names",),
    "names_overlap": ("names",),
    "numbers_shared": ("numbers",),
    "number_conflict": ("numbers",),
    "codes_shared": ("codes",),
    "salient_shared": ("salient",),
    "entity_jaccard": ("entities",),
    "entity_conflict": ("leads",),
    "code_conflict": ("title_codes",),
    "jaccard": ("signature",),
}
_MIN_NAMES = 3
#: Entity types whose disagreement is a conflict: two different companies, models or products in the
#: titles. A person or an agency in one title and a company in the other is no contradiction
#: ("Trump on Intel"), and countries name half of all articles.
CONFLICT_TYPES = frozenset({"org", "model", "product"})


def fields_for(features: Iterable[str]) -> tuple[str, ...]:
    """The record fields the given features read, sorted (what a state must return per candidate)."""
    return tuple(sorted({f for name in features for f in FEATURE_FIELDS.get(name, ())}))


# ------------------------------------------------------------------------------------------ fingerprints


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One article as the decision sees it: a vector and sets, no text.

    ``vector`` is the L2-normalised embedding (None: the article can only be an exact or near
    duplicate, never a story match); ``model`` names the embedding model (vectors of two models are
    never compared); ``published`` is POSIX seconds or NaN when unknown. ``leads`` holds only
    protagonists of the :data:`CONFLICT_TYPES`.
    """

    article_id: str
    lang: str
    vector: F32 | None = None
    model: str | None = None
    published: float = math.nan
    source: str | None = None
    names: frozenset[str] = frozenset()
    leads: frozenset[str] = frozenset()
    title_codes: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()  # informative numbers (see :func:`informative_number`)
    big_numbers: frozenset[str] = frozenset()
    salient: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()
    signature: U64 | None = None


def usable_vector(vector: object) -> F32 | None:
    """The vector as float32, or None when it is missing, empty, all zeros or not finite."""
    if vector is None:
        return None
    out = np.asarray(vector, dtype=np.float32).ravel()
    if out.size == 0 or not np.all(np.isfinite(out)) or not np.any(out):
        return None
    return out


def _number_value(number: str) -> float:
    try:
        return float(number.rstrip("%"))
    except ValueError:
        return 0.0


def informative_number(number: str) -> bool:
    """Percentages, decimals and values >= 32 (small integers are shared by unrelated stories)."""
    value = _number_value(number)
    return number.endswith("%") or not value.is_integer() or value >= 32


def big_number(number: str) -> bool:
    return number.endswith("%") or _number_value(number) >= 1000


# ------------------------------------------------------------------------------------------ features


def cosines(a: Fingerprint, cands: Sequence[Fingerprint]) -> F64:
    """Cosine of ``a`` with each candidate; NaN where either has no vector (or another model)."""
    out = np.full(len(cands), np.nan)
    if a.vector is None:
        return out
    for i, c in enumerate(cands):
        if c.vector is not None and len(c.vector) == len(a.vector) and c.model == a.model:
            out[i] = float(np.dot(a.vector, c.vector))
    return out


def _disjoint(x: frozenset[str], y: frozenset[str]) -> float:
    return 1.0 if x and y and x.isdisjoint(y) else 0.0


def pair_features(
    a: Fingerprint, cands: Sequence[Fingerprint], cos: F64 | None = None, only: Iterable[str] | None = None
) -> F64:
    """Features of ``a`` against every candidate: a (k, len(FEATURES)) matrix in :data:`FEATURES` order.

    ``cos`` gives the cosines (from the kNN scores); otherwise they are computed from the vectors.
    ``only`` (e.g. ``model.needs``) computes just those columns; the others stay 0. Missing data never
    raises: no vector gives cosine 0 (and :func:`choose_story` never matches such a pair), no
    signature gives Jaccard 0.
    """
    k = len(cands)
    X = np.zeros((k, len(FEATURES)), dtype=np.float64)
    if k == 0:
        return X
    need = set(FEATURES if only is None else only)
    c = cosines(a, cands) if cos is None else np.asarray(cos, dtype=np.float64)
    X[:, COLUMN["cos"]] = np.nan_to_num(c, nan=0.0)
    same = [x.lang == a.lang for x in cands]
    X[:, COLUMN["cross"]] = [0.0 if s else 1.0 for s in same]
    if need & {"names_shared", "names_overlap"} and a.names:
        shared = [len(a.names & x.names) if s else 0 for x, s in zip(cands, same, strict=True)]
        X[:, COLUMN["names_shared"]] = np.log1p(shared)
        if "names_overlap" in need and len(a.names) >= _MIN_NAMES:
            X[:, COLUMN["names_overlap"]] = [
                n / min(len(a.names), len(x.names)) if s and len(x.names) >= _MIN_NAMES else 0.0
                for x, s, n in zip(cands, same, shared, strict=True)
            ]
    if "numbers_shared" in need and a.numbers:
        X[:, COLUMN["numbers_shared"]] = [min(len(a.numbers & x.numbers), 3) for x in cands]
    if "number_conflict" in need and a.big_numbers:
        X[:, COLUMN["number_conflict"]] = [_disjoint(a.big_numbers, x.big_numbers) for x in cands]
    if "codes_shared" in need and a.codes:
        X[:, COLUMN["codes_shared"]] = [min(len(a.codes & x.codes), 2) for x in cands]
    if "salient_shared" in need and a.salient:
        X[:, COLUMN["salient_shared"]] = [min(len(a.salient & x.salient), 3) for x in cands]
    if "entity_jaccard" in need and a.entities:
        X[:, COLUMN["entity_jaccard"]] = [
            len(a.entities & x.entities) / len(a.entities | x.entities) for x in cands
        ]
    if "entity_conflict" in need and a.leads:
        X[:, COLUMN["entity_conflict"]] = [_disjoint(a.leads, x.leads) for x in cands]
    if "code_conflict" in need and a.title_codes:
        X[:, COLUMN["code_conflict"]] = [_disjoint(a.title_codes, x.title_codes) for x in cands]
    if "jaccard" in need and a.signature is not None:
        sig = a.signature
        X[:, COLUMN["jaccard"]] = [
            float(np.mean(x.signature == sig))
            if s and x.signature is not None and len(x.signature) == len(sig)
            else 0.0
            for x, s in zip(cands, same, strict=True)
        ]
    return X


# ------------------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Model:
    """Logistic regression over standardised features, with its decision thresholds.

    p = sigmoid(intercept + Σ coef_i · (x_i − mean_i) / scale_i + Σ prior_j · x_j)

    ``prior`` holds fixed log-odds per unit of a feature, added to the fitted terms: domain
    knowledge the training pairs cannot estimate (see the module docstring). ``threshold`` is the
    pairwise same-story cut (maximal F1 on inner cross-validation folds); ``join_threshold`` is what a
    story's aggregated score must reach for an article to join it, ``merge_threshold`` the evidence
    needed to merge two existing stories.
    """

    features: tuple[str, ...]
    mean: F64
    scale: F64
    coef: F64
    intercept: float
    threshold: float
    join_threshold: float
    merge_threshold: float = 0.95
    linkage: str = "mean_max"
    prior: Mapping[str, float] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [f for f in (*self.features, *self.prior) if f not in COLUMN]
        if unknown:
            raise ValueError(f"model uses unknown features {unknown}; known: {', '.join(FEATURES)}")
        if not len(self.mean) == len(self.scale) == len(self.coef) == len(self.features):
            raise ValueError("model arrays do not match its feature list")
        if self.linkage not in LINKAGES:
            raise ValueError(f"unknown linkage {self.linkage!r}; known: {', '.join(LINKAGES)}")

    @property
    def needs(self) -> tuple[str, ...]:
        """Every feature the model reads (fitted and prior terms)."""
        return (*self.features, *self.prior)

    def logit(self, X: F64) -> F64:
        """Log-odds for rows of the full :data:`FEATURES` matrix."""
        cols = [COLUMN[f] for f in self.features]
        out: F64 = ((X[:, cols] - self.mean) / self.scale) @ self.coef + self.intercept
        for name, weight in self.prior.items():
            out = out + weight * X[:, COLUMN[name]]
        return out

    def probability(self, X: F64) -> F64:
        out: F64 = 1.0 / (1.0 + np.exp(-np.clip(self.logit(X), -40.0, 40.0)))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "kind": "logistic",
            "features": list(self.features),
            "mean": [float(x) for x in self.mean],
            "scale": [float(x) for x in self.scale],
            "coef": [float(x) for x in self.coef],
            "intercept": float(self.intercept),
            "threshold": float(self.threshold),
            "join_threshold": float(self.join_threshold),
            "merge_threshold": float(self.merge_threshold),
            "linkage": self.linkage,
            "prior": {k: float(v) for k, v in self.prior.items()},
            "meta": dict(self.meta),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Model:
        if data.get("format") != MODEL_FORMAT or data.get("kind") != "logistic":
            raise ValueError(f"not a same-story model file (format {data.get('format')!r})")
        return Model(
            features=tuple(str(f) for f in data["features"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            threshold=float(data["threshold"]),
            join_threshold=float(data.get("join_threshold", data["threshold"])),
            merge_threshold=float(data.get("merge_threshold", 0.95)),
            linkage=str(data.get("linkage", "mean_max")),
            prior={str(k): float(v) for k, v in (data.get("prior") or {}).items()},
            meta=dict(data.get("meta") or {}),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: Path) -> Model:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"same-story model {path}: {error}") from None
        return Model.from_json(data)


@lru_cache(maxsize=4)
def load_model(path: Path | None = None) -> Model:
    """The shipped model (``enrich/models/same_story.json``), or another file (``NEWSRADAR_STORY_MODEL``)."""
    return Model.load(path or MODEL_PATH)


# ------------------------------------------------------------------------------------------ clustering

LINKAGES = ("mean_max", "max", "mean")


def aggregate(prob: F64, story_index: I64, n_stories: int, linkage: str) -> F64:
    """One score per story from its candidate members' probabilities.

    * ``max``: the closest member (single linkage; chains: A~B, B~C puts A and C together);
    * ``mean``: the average over the story's candidate members;
    * ``mean_max`` (default): the mean of the two: the best member must be convincing and the rest of
      the story must not contradict it.
    """
    if n_stories == 0:
        return np.zeros(0)
    best = np.full(n_stories, -np.inf)
    np.maximum.at(best, story_index, prob)
    counts = np.bincount(story_index, minlength=n_stories).astype(np.float64)
    sums = np.bincount(story_index, weights=prob, minlength=n_stories)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1.0), -np.inf)
    if linkage == "max":
        return best
    if linkage == "mean":
        return mean
    if linkage == "mean_max":
        out: F64 = 0.5 * (best + mean)
        return out
    raise ValueError(f"unknown linkage {linkage!r}")


@dataclass(frozen=True)
class StoryChoice:
    """Where a new article goes (``story_id`` None: a new story), its score, its closest member, and
    the other candidate stories that strong two-sided evidence shows to be the same story."""

    story_id: str | None
    score: float
    best_member: str | None = None
    merge: tuple[str, ...] = ()


Vectors = Callable[[Sequence[str]], Mapping[str, F32]]


def choose_story(
    a: Fingerprint,
    cands: Sequence[Fingerprint],
    story_index: Sequence[int] | I64,
    story_ids: Sequence[str],
    model: Model,
    *,
    cos: F64 | None = None,
    centroids: F32 | None = None,
    window_hours: float | None = 96.0,
    linkage: str | None = None,
    allow_merge: bool = True,
    vectors: Vectors | None = None,
) -> StoryChoice:
    """The story a new article joins, or None for a new story: no chaining.

    ``cands`` are the candidate members (already assigned); ``story_index[i]`` is the position in
    ``story_ids`` of candidate ``i``'s (redirect-resolved) story; ``cos`` their cosines with ``a``
    (NaN: not comparable). Candidates published more than ``window_hours`` away count as p = 0
    (unknown times never veto). The article joins the story with the best aggregated score
    (:func:`aggregate`) if it reaches ``model.join_threshold``.

    ``centroids`` (row per story: its members' vector sum, zeros where unknown) caps a story's score
    by the probability the model gives when the best member's cosine is replaced by the cosine with
    the centroid: the kNN query returns the members *nearest* the new article, so a story that drifted
    would otherwise be judged by its near end only.

    Merges: another candidate story is reported in ``merge`` only when the article matches it with
    at least ``model.merge_threshold`` too *and* the two stories' candidate members match each other
    directly (best cross pair >= ``merge_threshold``, mean >= ``threshold``): evidence from both sides,
    never a bridge through one article. ``vectors`` fetches member vectors the candidates lack (kNN
    hits come with their cosine only); it is called only for such a merge check.
    """
    idx = np.asarray(story_index, dtype=np.int64)
    n = len(story_ids)
    if a.vector is None or not cands or n == 0:
        return StoryChoice(None, 0.0)
    c = cosines(a, cands) if cos is None else np.asarray(cos, dtype=np.float64)
    X = pair_features(a, cands, c, model.needs)
    prob = model.probability(X)
    invalid = ~np.isfinite(c)
    if window_hours is not None and math.isfinite(a.published):
        published = np.fromiter((x.published for x in cands), dtype=np.float64, count=len(cands))
        invalid |= np.isfinite(published) & (np.abs(published - a.published) > window_hours * 3600.0)
    prob = np.where(invalid, 0.0, prob)
    scores = aggregate(prob, idx, n, linkage or model.linkage)
    # the best member of every story (highest probability first)
    ranked = np.lexsort((-prob, idx))
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = idx[ranked][1:] != idx[ranked][:-1]
    best_of = np.full(n, -1, dtype=np.int64)
    best_of[idx[ranked][first]] = ranked[first]
    if centroids is not None and len(centroids) == n and centroids.shape[1] == len(a.vector):
        norms = np.linalg.norm(centroids, axis=1)
        known = (norms > 1e-9) & (best_of >= 0)
        if known.any():
            rows = X[best_of[known]].copy()
            rows[:, COLUMN["cos"]] = (centroids[known] @ a.vector) / norms[known]
            scores[known] = np.minimum(scores[known], model.probability(rows))
    order = np.argsort(-scores, kind="stable")
    best = int(order[0])
    if not scores[best] >= model.join_threshold:
        return StoryChoice(None, float(max(scores[best], 0.0)))
    best_member = cands[int(best_of[best])].article_id
    merge: list[str] = []
    if allow_merge and scores[best] >= model.merge_threshold:
        for other in order[1:]:
            if not scores[int(other)] >= model.merge_threshold:
                break
            left = [cands[int(i)] for i in np.flatnonzero(idx == best)]
            right = [cands[int(i)] for i in np.flatnonzero(idx == int(other))]
            if stories_agree(left, right, model, vectors):
                merge.append(story_ids[int(other)])
    return StoryChoice(story_ids[best], float(scores[best]), best_member, tuple(merge))


def stories_agree(
    left: Sequence[Fingerprint], right: Sequence[Fingerprint], model: Model, vectors: Vectors | None = None
) -> bool:
    """Members of two stories match each other directly (not only through a new article)."""
    missing = [f.article_id for f in (*left, *right) if f.vector is None]
    if missing and vectors is not None:
        found = vectors(missing)
        left = [replace(f, vector=found.get(f.article_id, f.vector)) for f in left]
        right = [replace(f, vector=found.get(f.article_id, f.vector)) for f in right]
    cross = [model.probability(pair_features(f, right, only=model.needs)) for f in left]
    valid = [np.where(np.isfinite(cosines(f, right)), p, 0.0) for f, p in zip(left, cross, strict=True)]
    both = np.concatenate(valid) if valid else np.zeros(0)
    return bool(len(both) and both.max() >= model.merge_threshold and both.mean() >= model.threshold)


class Redirects:
    """Story id redirects after merges: ``resolve`` follows them, so an absorbed id stays valid."""

    def __init__(self, pairs: Mapping[str, str] | None = None) -> None:
        self._to: dict[str, str] = dict(pairs or {})

    def resolve(self, story_id: str) -> str:
        seen = {story_id}
        while story_id in self._to:
            story_id = self._to[story_id]
            if story_id in seen:  # a cycle can only come from corrupt state: stop rather than loop
                break
            seen.add(story_id)
        return story_id

    def merge(self, absorbed: str, into: str) -> None:
        a, b = self.resolve(absorbed), self.resolve(into)
        if a != b:
            self._to[a] = b

    def as_dict(self) -> dict[str, str]:
        return dict(self._to)


# ------------------------------------------------------------------------------------------ one batch


def default_story_id(article_id: str) -> str:
    """Deterministic: the founding article fixes the story id on every worker and re-run."""
    return "s-" + hashlib.sha1(f"story:{article_id}".encode()).hexdigest()[:18]


@dataclass(frozen=True)
class Assignment:
    """The decision for one article: ``match`` is ``exact``/``near`` for a duplicate (found by the
    caller), ``story`` for a learned match, ``new`` for a new story; ``score`` is the story's
    aggregated score (calibrated probability scale) for ``story``, the best rejected one for ``new``,
    the similarity for a duplicate."""

    article_id: str
    story_id: str
    match: str
    score: float
    duplicate_of: str | None = None
    best_member: str | None = None


@dataclass
class BatchResult:
    """Decisions in the given order, and what the caller writes once per batch: merges (absorbed
    story id -> surviving id), and the members each story gained."""

    assignments: list[Assignment]
    merges: dict[str, str]
    added: dict[str, list[str]]


Hit = tuple[Fingerprint, float]  # a stored candidate and its cosine with the new article


def assign_batch(
    items: Sequence[Fingerprint],
    hits: Sequence[Sequence[Hit]],
    hit_story: Mapping[str, str],
    model: Model,
    *,
    duplicate_of: Mapping[str, tuple[str, str, float]] | None = None,
    redirects: Redirects | None = None,
    neighbours: int = 40,
    window_hours: float | None = 96.0,
    new_story_id: Callable[[str], str] = default_story_id,
    story_sums: Mapping[str, F32] | None = None,
    story_age: Callable[[str], float] | None = None,
    vectors: Vectors | None = None,
) -> BatchResult:
    """Assign a batch of new articles, in the given order (publication time, then id).

    ``hits[i]`` are the stored articles the state's kNN query returned for ``items[i]``, with their
    cosines; ``hit_story`` maps stored ids to their story ids. Articles of the batch are candidates
    for each other too: article ``i`` also sees the ``neighbours`` most similar earlier items of the
    batch with vectors of its model (one matrix product), so two reports of one event in one batch
    meet without any round trip. ``duplicate_of`` carries the caller's exact and near-duplicate
    decisions (id -> (original, ``"exact"``/``"near"``, similarity)): such an article takes the
    original's story and skips the model.

    ``story_sums`` (story id -> vector sum of its members) switches the centroid cap on. Merges keep
    the older story (smaller ``story_age(id)``, inf for stories of this batch; ties by id), so
    two workers that see the same evidence merge in the same direction. Nothing is written here.
    """
    redirects = redirects if redirects is not None else Redirects()
    dups = duplicate_of or {}
    n = len(items)
    d = next((len(f.vector) for f in items if f.vector is not None), 0)
    V = np.zeros((n, d), dtype=np.float32)
    usable = np.zeros(n, dtype=bool)
    for i, f in enumerate(items):
        if f.vector is not None and len(f.vector) == d:
            V[i], usable[i] = f.vector, True
    sums: dict[str, F32] | None = None
    if story_sums is not None:
        sums = {k: np.asarray(v, dtype=np.float32) for k, v in story_sums.items()}
    decided: dict[str, str] = {}  # batch article id -> story id as decided (resolve on use)
    out: list[Assignment] = []
    merges: dict[str, str] = {}

    def age(story: str) -> tuple[float, str]:
        return (story_age(story) if story_age is not None else math.inf, story)

    for i, f in enumerate(items):
        original, kind, similarity = dups.get(f.article_id, ("", "", 0.0))
        if original and (original in decided or original in hit_story):
            sid = redirects.resolve(decided.get(original) or hit_story[original])
            out.append(Assignment(f.article_id, sid, kind or "near", similarity, duplicate_of=original))
            decided[f.article_id] = sid
            if sums is not None and f.vector is not None and sid in sums:
                sums[sid] = sums[sid] + f.vector
            continue
        cands: list[Fingerprint] = []
        cos: list[float] = []
        seen: set[str] = set()
        for hit, c in hits[i]:
            if hit.article_id in hit_story and hit.article_id != f.article_id and hit.article_id not in seen:
                seen.add(hit.article_id)
                cands.append(hit)
                cos.append(c)
        if i and f.vector is not None and usable[i]:
            sims = V[:i] @ f.vector
            pool = np.flatnonzero(usable[:i])
            if len(pool) > neighbours:
                pool = pool[np.argpartition(-sims[pool], neighbours - 1)[:neighbours]]
            for j in pool[np.argsort(-sims[pool], kind="stable")]:
                earlier = items[int(j)]
                if (
                    earlier.article_id in decided
                    and earlier.model == f.model
                    and earlier.article_id not in seen
                ):
                    seen.add(earlier.article_id)
                    cands.append(earlier)
                    cos.append(float(sims[j]))
        sids = [redirects.resolve(decided.get(c.article_id) or hit_story[c.article_id]) for c in cands]
        unique = list(dict.fromkeys(sids))
        position = {s: k for k, s in enumerate(unique)}
        centroids = None
        if sums is not None and unique and d:
            centroids = np.zeros((len(unique), d), dtype=np.float32)
            for k, s in enumerate(unique):
                if s in sums:
                    centroids[k] = sums[s]
        choice = choose_story(
            f,
            cands,
            [position[s] for s in sids],
            unique,
            model,
            cos=np.asarray(cos, dtype=np.float64),
            centroids=centroids,
            window_hours=window_hours,
            vectors=vectors,
        )
        if choice.story_id is None:
            sid = new_story_id(f.article_id)
            out.append(Assignment(f.article_id, sid, "new", choice.score))
            if sums is not None and f.vector is not None:
                sums[sid] = f.vector.copy()
        else:
            sid = choice.story_id
            for other in choice.merge:
                keep, absorbed = sorted((redirects.resolve(sid), redirects.resolve(other)), key=age)
                if keep == absorbed:
                    continue
                redirects.merge(absorbed, keep)
                merges[absorbed] = keep
                if sums is not None and absorbed in sums:
                    sums[keep] = sums.get(keep, np.zeros(d, dtype=np.float32)) + sums.pop(absorbed)
            sid = redirects.resolve(sid)
            out.append(Assignment(f.article_id, sid, "story", choice.score, best_member=choice.best_member))
            if sums is not None and f.vector is not None and sid in sums:
                sums[sid] = sums[sid] + f.vector
        decided[f.article_id] = sid
    final = [replace(a, story_id=redirects.resolve(a.story_id)) for a in out]
    added: dict[str, list[str]] = {}
    for a in final:
        added.setdefault(a.story_id, []).append(a.article_id)
    return BatchResult(final, {k: redirects.resolve(v) for k, v in merges.items()}, added)
