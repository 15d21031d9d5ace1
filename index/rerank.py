"""The learned re-ranker of hybrid search: one linear score over the BM25 and kNN candidates.

Reciprocal-rank fusion only sees ranks. With the language-centred cosine (``index.space``) the
similarity itself means something (unrelated news near 0, the same story 0.4-0.7), and whether a
document has the query's things — its named entities, its concepts in any language — can be read
from its title here. The re-ranker weighs four features of each candidate (the union of both
retrievers' windows):

* ``cosine``: centred cosine to the query (a BM25-only candidate outside the kNN window gets the
  window's lowest minus 0.05);
* ``bm25``: its BM25 score over the best BM25 score of the query (0 when BM25 did not match it);
* ``cover``: the share of the query's required units (entities, concepts, words; ``index.understand``)
  found in its title, lead or their English versions, or, for entities, in its ``entities`` field,
  each unit weighted by its rarity among the candidates (an inverse document frequency);
* ``anchor``: the share of the query's named companies, models and agencies it has (1 when the query
  names none);
* ``event``: when the query asks for a kind of event (its words name a ban, a release, an export
  control ...; ``index.understand``), the classifier's calibrated probability that the article
  reports that kind (0 for every candidate of a query that names none): "neues Claude-Modell" wants
  the release, not the ID-check rule about Claude;
* ``story_cosine`` and ``story_count``: the best cosine among the candidates of its story, and how
  many of its story's articles are candidates (log): a story is judged as a whole, so an article
  whose story's other-language article matches well is lifted with it.

The weights are a plain file (``index/reranker.json``), fitted by ``python -m bench.train_reranker``
on the dev queries only, pairwise logistic regression, 5-fold cross-validation grouped by topic (a
topic's three language versions stay in one fold). It is used only with the embedding model and
language means it was fitted for; anything else keeps reciprocal-rank fusion.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from index.understand import Understanding, normal_text, unit_matcher

RERANKER_PATH = Path(__file__).with_name("reranker.json")
FEATURES = ("cosine", "bm25", "cover", "anchor", "event", "story_cosine", "story_count")
TEXT_FIELDS = ("title", "title_en", "lead", "lead_en")
OUTSIDE_WINDOW = 0.05  # a BM25-only candidate: this far below the lowest cosine of the kNN window


def candidates(
    reading: Understanding,
    sources: dict[str, dict[str, Any]],
    bm25: list[tuple[str, float]],
    cosine: dict[str, float],
) -> dict[str, dict[str, float]]:
    """Features of every candidate: the BM25 hits (id, score; best first) and the kNN hits (centred
    cosine by id). ``cover`` weighs each required unit by its rarity among the candidates,
    log(1 + n / (1 + candidates with it)): "tiers" in "AI chip export rule tiers" says more than "chip",
    which nearly every candidate has."""
    best = max((score for _, score in bm25), default=0.0) or 1.0
    lowest = min(cosine.values(), default=0.0) - OUTSIDE_WINDOW
    scores = dict(bm25)
    ids = list(dict.fromkeys([*(d for d, _ in bm25), *cosine]))
    units = reading.units
    matchers = [unit_matcher(u) for u in units]
    required = [i for i, u in enumerate(units) if not u.optional] or list(range(len(units)))
    anchors = [i for i, u in enumerate(units) if u.kind == "entity" and u.anchor]
    found: dict[str, list[bool]] = {}
    for doc_id in ids:
        source = sources[doc_id]
        text = normal_text(" \n ".join(str(source.get(f) or "") for f in TEXT_FIELDS))
        entities = set(source.get("entities") or [])
        found[doc_id] = [match(text, entities) for match in matchers]
    rarity = {i: math.log(1 + len(ids) / (1 + sum(found[d][i] for d in ids))) for i in required}
    total = sum(rarity.values())
    events = {u.event for u in units if u.event}
    stories: dict[str, list[str]] = {}
    for doc_id in ids:
        stories.setdefault(str(sources[doc_id].get("story_id") or doc_id), []).append(doc_id)
    out: dict[str, dict[str, float]] = {}
    for doc_id in ids:
        has = found[doc_id]
        mates = stories[str(sources[doc_id].get("story_id") or doc_id)]
        out[doc_id] = {
            "cosine": cosine.get(doc_id, lowest),
            "bm25": scores.get(doc_id, 0.0) / best,
            "cover": sum(rarity[i] for i in required if has[i]) / total if total else 0.0,
            "anchor": sum(has[i] for i in anchors) / len(anchors) if anchors else 1.0,
            "event": _event_probability(sources[doc_id], events),
            "story_cosine": max(cosine.get(mate, lowest) for mate in mates),
            "story_count": math.log1p(len(mates)),
        }
    return out


def _event_probability(source: dict[str, Any], events: set[str]) -> float:
    """How likely the article reports one of the query's kinds of event (calibrated scores; an
    article indexed without them counts its event types as certain)."""
    if not events:
        return 0.0
    scores = source.get("event_scores") or {}
    if scores:
        return max(float(scores.get(event) or 0.0) for event in events)
    return float(bool(events & set(source.get("event_types") or [])))


@dataclass(frozen=True)
class Reranker:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    embedding_model: str

    def score(self, values: dict[str, float]) -> float:
        return sum(w * values[f] for f, w in zip(self.features, self.weights, strict=True))

    def as_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "embedding_model": self.embedding_model,
        }


@lru_cache(maxsize=4)
def reranker(model: str, path: Path = RERANKER_PATH) -> Reranker | None:
    """The fitted re-ranker for this embedding model, or None (no file, another model, unknown
    features): search then fuses by reciprocal rank."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text("utf-8"))
    if data.get("embedding_model") != model or not set(data.get("features", [])) <= set(FEATURES):
        return None
    return Reranker(tuple(data["features"]), tuple(float(w) for w in data["weights"]), model)
