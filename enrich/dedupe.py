"""Duplicates and stories: one story per event, whatever the outlet or language.

For a batch of articles, cheapest test first, each only when the previous one found nothing:

1. **Exact duplicates** share a canonical URL or a hash of their normalised content.
2. **Near-duplicates** (rewritten wire copies) in the same language share MinHash LSH band keys over
   word shingles (de/en) or jieba-token shingles (zh, with catalog names added to jieba so 通义千问
   stays one token), and their estimated Jaccard similarity reaches the threshold. The banding is
   computed here rather than by ``datasketch.MinHashLSH`` so the keys can be stored as keyword terms in
   Elasticsearch and shared by every worker.
3. **Same story** across languages and outlets: the learned decision of :mod:`enrich.same_story` over
   the article's nearest stored articles (kNN within a time window) and the earlier articles of the
   same batch; the article joins the story it matches best above the calibrated threshold, without
   chaining.

Otherwise the article founds a new story whose id derives from the article's id. The algorithm talks
to a :class:`StoryState` in two calls per batch — ``candidates`` (everything the decisions compare
against, in one round trip) and ``commit`` (one write of the decisions and the touched stories) — in
memory here (:class:`MemoryState`), in Elasticsearch in :mod:`index.stories`; a re-run returns what is
stored instead of deciding again. Pure: nothing here talks to Elasticsearch.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from enrich import same_story
from enrich.entities import catalog, chinese_segmenter, find_entities
from enrich.numbers import extract_numbers
from enrich.same_story import Fingerprint, Model, Redirects, load_model
from newsradar.article import Article
from newsradar.settings import Settings
from newsradar.text import has_han

NUM_PERM = 128
# Band layout for LSH threshold 0.3 (datasketch's optimum for 128 permutations): every pair a
# sensible --threshold can accept becomes a candidate; the threshold itself is applied on the estimate.
BANDS, ROWS = 37, 3
DEFAULT_THRESHOLD = 0.5
DEFAULT_WINDOW_HOURS = 96.0
NEIGHBOURS = 40  # stored kNN candidates per article (and as many earlier articles of the batch)
# A body is clipped to this many characters before shingles, entities and numbers are extracted: the
# first 20,000 characters of any news article identify its story, and a 2 MB page (a live blog, a
# scraped archive) would otherwise cost seconds of regex and MinHash work for nothing.
MAX_TEXT_CHARS = 20_000
# The name-like words the model compares come from this much of "title, lead, body": the training
# texts (SemEval) are cut at about 1,300 characters and shared-name counts grow with text length, so
# names from a whole 8,000-character article would look like stronger evidence than the model learned.
FEATURE_TEXT_CHARS = 1_300
_MIN_HASH_CHARS = 30  # shorter normalised content (a bare short title) is too generic to hash
_BODY_HASH_CHARS = 200  # a body this long identifies the copy even under a different headline
_GENERIC_ENTITY_TYPES = {"country", "jurisdiction"}
MATCHES = ("exact", "near", "story", "new")

Vector = npt.NDArray[np.float32]


# ------------------------------------------------------------------------------------------ features


_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CODE = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,8}-?\d+(?:\.\d+)?[A-Za-z]{0,3}|\d+[A-Za-z]{1,3}\d*[A-Za-z]*)(?![A-Za-z0-9])"
)
_NOT_CODES = re.compile(r"^(?:\d+(?:k|m|b|bn|mn|mrd|mio|st|nd|rd|th|s|h|min|am|pm|kg|km|gb|tb|mb)|[a-z]\d)$")


# ------------------------------------------------------------------------------------------ features


def normalise_text(text: str) -> str:
    """NFKC, lower case, words only: what stays when an outlet re-typesets a copy."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).lower()))


def url_key(url: str | None) -> str | None:
    if not url:
        return None
    from newsradar.urls import canonicalize

    key = canonicalize(url)
    return key.rstrip("/") if key.count("/") > 3 else key


def content_hash(title: str, text: str) -> str | None:
    """Hash of the normalised body when it is long enough to identify a copy, else of title + body."""
    body = normalise_text(text)
    basis = body if len(body) >= _BODY_HASH_CHARS else normalise_text(f"{title} {text}")
    if len(basis) < _MIN_HASH_CHARS:
        return None
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()


def tokens(text: str, lang: str | None) -> list[str]:
    """Words for shingling: jieba tokens for Chinese, Unicode words otherwise (numbers kept)."""
    norm = unicodedata.normalize("NFKC", text).lower()
    if lang == "zh" or (lang is None and has_han(norm)):
        out = []
        for token in chinese_segmenter().lcut(norm):
            token = token.strip()
            if token and _WORD.fullmatch(token):
                out.append(token)
            elif token and _WORD.search(token):
                out.extend(_WORD.findall(token))
        return out
    return _WORD.findall(norm)


def shingles(text: str, lang: str | None, n: int = 2) -> set[str]:
    """Overlapping token n-grams. Pairs, not the classic 3- to 5-grams: a rewritten wire copy swaps
    words and reorders sentences, and on human-judged pairs word pairs still keep independent reports
    of one event below a Jaccard of 0.3 (99th percentile, ``bench.neardup`` data)."""
    words = tokens(text, lang)
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def minhash(items: Iterable[str]) -> npt.NDArray[np.uint64]:
    from datasketch import MinHash

    sketch = MinHash(num_perm=NUM_PERM, seed=1)
    sketch.update_batch([s.encode("utf-8") for s in items])
    return np.asarray(sketch.hashvalues, dtype=np.uint64)


def band_keys(signature: npt.NDArray[np.uint64], lang: str) -> list[str]:
    """One keyword per LSH band, prefixed with the language (near-duplicates share a language)."""
    keys = []
    for band in range(BANDS):
        chunk = signature[band * ROWS : (band + 1) * ROWS].astype("<u8").tobytes()
        keys.append(f"{lang}:{band}:{hashlib.sha1(chunk).hexdigest()[:16]}")
    return keys


def jaccard(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> float:
    """MinHash estimate of Jaccard similarity (share of equal signature slots)."""
    return float(np.mean(a == b))


def codes(text: str) -> set[str]:
    """Model and product codes ("H20", "GPT-4o", "A100"): the same string in every language."""
    found = set()
    for m in _CODE.finditer(unicodedata.normalize("NFKC", text)):
        code = m.group(1).lower().replace("-", "")
        if not _NOT_CODES.match(code) and any(c.isalpha() for c in code) and any(c.isdigit() for c in code):
            found.add(code)
    return found


_SENTENCE = re.compile(r"(?<=[.!?:;])\s+|\n+")
_LATIN_WORDISH = re.compile(r"[A-Za-zÀ-ɏ][A-Za-zÀ-ɏ0-9'’-]*")


def names(text: str, lang: str | None) -> set[str]:
    """Name-like words, for stories the catalog does not know (a minister, a town, a drug).

    In Latin script: capitalised words that do not start a sentence (German capitalises every noun,
    so there this is closer to "content nouns", which still separates stories well, as measured); in
    Chinese text: the Latin words, which are names and products ("OpenAI", "Qwen").
    """
    found: set[str] = set()
    for sentence in _SENTENCE.split(text):
        words = _LATIN_WORDISH.findall(sentence)
        han = lang == "zh" or has_han(sentence)
        for position, word in enumerate(words):
            word = word.strip("'’-")
            if len(word) < 2 or (len(word) < 3 and not word.isupper()):
                continue
            if han or (position > 0 and word[0].isupper()):
                found.add(word.lower())
    return found


@dataclass(frozen=True)
class EntityFacts:
    """Catalog entities of one article, at three levels of importance."""

    leads: list[str]  # protagonists: specific entities of the title (else the most salient), with parents
    salient: list[str]  # specific entities named in the title or repeatedly
    every: list[str]  # all entities, with parents


def entity_facts(title: str, text: str, lang: str | None) -> EntityFacts:
    """Countries and jurisdictions are never protagonists or salient: nearly every article here names
    China or the US, so they cannot tell stories apart."""
    cat = catalog()

    def with_parent(name: str) -> list[str]:
        parent = cat.entities[name].parent
        return [name, parent] if parent else [name]

    every: list[str] = []
    salient: list[str] = []
    leads: list[str] = []
    specific = []
    for match in find_entities(title, text, lang):
        every.extend(n for n in with_parent(match.name) if n not in every)
        if match.type in _GENERIC_ENTITY_TYPES:
            continue
        specific.append(match)
        if match.in_title or match.count >= 2:
            salient.append(match.name)
        if match.in_title:
            leads.extend(n for n in with_parent(match.name) if n not in leads)
    if not leads and specific:
        leads = with_parent(specific[0].name)
    return EntityFacts(leads, salient, every)


def clip_text(text: str | None, limit: int = MAX_TEXT_CHARS) -> str:
    """The part of a body worth fingerprinting; None (no text) becomes empty."""
    return (text or "")[:limit]


def feature_window(
    title: str | None, lead: str | None, text: str | None, limit: int = FEATURE_TEXT_CHARS
) -> str:
    """The text whose name-like words the model compares (see :data:`FEATURE_TEXT_CHARS`)."""
    title, lead, text = title or "", lead or "", text or ""
    body = f"{lead}\n{text}" if lead and lead not in text else text
    return f"{title}\n{body}"[:limit]


def own_name(source: str | None) -> set[str]:
    """The words of the outlet's own name: its bylines and "Circuit Daily reports" say nothing about
    which story an article tells, yet would count as shared names between any two of its articles."""
    return {part for part in re.split(r"[^a-z0-9]+", (source or "").lower()) if len(part) >= 2}


@lru_cache(maxsize=65536)
def protagonists(leads: tuple[str, ...]) -> frozenset[str]:
    """The leads whose disagreement is a conflict: catalogued orgs, models and products
    (:data:`enrich.same_story.CONFLICT_TYPES`)."""
    known = catalog().entities
    return frozenset(
        name for name in leads if name in known and known[name].type in same_story.CONFLICT_TYPES
    )


# ------------------------------------------------------------------------------------------ records


@dataclass
class Record:
    """What the state keeps per article: enough to compare a later article without re-reading it,
    and the decision (``match``: exact | near | story | new; ``score``: the similarity of a duplicate,
    the story's calibrated score for ``story``, the best rejected story's score for ``new``)."""

    article_id: str
    lang: str
    title: str = ""
    source: str | None = None
    url: str | None = None
    url_key: str | None = None
    content_hash: str | None = None
    published: datetime | None = None
    signature: npt.NDArray[np.uint64] | None = None
    bands: list[str] = field(default_factory=list)
    vector: Vector | None = None
    embedding_model: str | None = None
    entities: list[str] = field(default_factory=list)
    salient: list[str] = field(default_factory=list)
    leads: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    title_codes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    # the decision
    story_id: str | None = None
    duplicate_of: str | None = None
    match: str = "new"
    score: float = 0.0


def order_key(record: Record) -> tuple[bool, datetime, str]:
    """Publication order, then id; articles without a time come last."""
    far = datetime.max.replace(tzinfo=UTC)
    return (record.published is None, record.published or far, record.article_id)


def story_id_for(article_id: str) -> str:
    """Deterministic: the same founding article gives the same story id on every worker and re-run."""
    return same_story.default_story_id(article_id)


def to_fingerprint(record: Record) -> Fingerprint:
    """The decision's view of a record (only the fields a state returned are filled)."""
    nums = record.numbers
    return Fingerprint(
        article_id=record.article_id,
        lang=record.lang,
        vector=same_story.usable_vector(record.vector),
        model=record.embedding_model,
        published=record.published.timestamp() if record.published is not None else math.nan,
        source=record.source,
        names=frozenset(record.names),
        leads=protagonists(tuple(record.leads)) if record.leads else frozenset(),
        title_codes=frozenset(record.title_codes),
        codes=frozenset(record.codes),
        numbers=frozenset(n for n in nums if same_story.informative_number(n)),
        big_numbers=frozenset(n for n in nums if same_story.big_number(n)),
        salient=frozenset(record.salient),
        entities=frozenset(record.entities),
        signature=record.signature,
    )


@dataclass
class StoryDoc:
    """What the state keeps per story: what the decision needs, never article-level facts (size,
    outlets, languages and the first report are ``index.story_facts``, from the articles).

    ``vector_sum`` (the sum of the members' vectors of ``embedding_model``, ``vectors`` of them) gives
    the story's centroid; ``merged_into`` redirects a story merged into another."""

    story_id: str
    article_ids: list[str] = field(default_factory=list)
    vector_sum: Vector | None = None
    vectors: int = 0
    embedding_model: str | None = None
    merged_into: str | None = None
    merged_from: list[str] = field(default_factory=list)
    created_at: datetime | None = None

    def with_members(self, records: Iterable[Record]) -> StoryDoc:
        """Add members; idempotent (a member already counted changes nothing)."""
        ids = set(self.article_ids)
        doc = replace(self, article_ids=list(self.article_ids), merged_from=list(self.merged_from))
        for record in records:
            if record.article_id in ids:
                continue
            ids.add(record.article_id)
            doc.article_ids.append(record.article_id)
            vector = same_story.usable_vector(record.vector)
            if vector is None or (doc.embedding_model and record.embedding_model != doc.embedding_model):
                continue
            if doc.vector_sum is None or len(doc.vector_sum) != len(vector):
                doc.vector_sum, doc.vectors = np.zeros(len(vector), dtype=np.float32), 0
            doc.vector_sum = doc.vector_sum + vector
            doc.vectors += 1
            doc.embedding_model = record.embedding_model
        doc.article_ids.sort()
        return doc

    def absorbing(self, other: StoryDoc) -> StoryDoc:
        """This story after ``other`` was merged into it (idempotent)."""
        if other.story_id in self.merged_from:
            return self
        doc = replace(
            self,
            article_ids=sorted(set(self.article_ids) | set(other.article_ids)),
            merged_from=sorted({*self.merged_from, other.story_id}),
        )
        if other.vector_sum is not None and other.embedding_model in (None, doc.embedding_model):
            if doc.vector_sum is None:
                doc.vector_sum, doc.vectors = other.vector_sum.copy(), other.vectors
            elif len(doc.vector_sum) == len(other.vector_sum):
                doc.vector_sum, doc.vectors = doc.vector_sum + other.vector_sum, doc.vectors + other.vectors
            doc.embedding_model = doc.embedding_model or other.embedding_model
        return doc


# ------------------------------------------------------------------------------------------ state


@dataclass(frozen=True)
class CandidateQuery:
    """What ``StoryState.candidates`` looks for: ``k`` nearest stored articles per batch article, of the
    same embedding model, published within ``window`` of it (None: any time; unknown times always
    qualify), returning ``fields`` of each neighbour besides id, story, language, time and model;
    ``sums``: also the stories' vector sums."""

    k: int = NEIGHBOURS
    window: timedelta | None = timedelta(hours=DEFAULT_WINDOW_HOURS)
    fields: tuple[str, ...] = ()
    sums: bool = False


Neighbours = dict[str, list[tuple["Record", float]]]  # batch article id -> stored kNN hits, cosines


@dataclass
class Candidates:
    """Everything a batch is compared against."""

    stored: dict[str, Record]  # batch articles already decided (a re-run, another worker)
    exact: list[Record]  # stored articles sharing a canonical-URL key or content hash with the batch
    near: list[Record]  # stored articles sharing an LSH band key with the batch (with signatures)
    hits: Neighbours  # batch article id -> stored kNN neighbours and their cosines
    redirects: dict[str, str] = field(default_factory=dict)  # merged story -> the story it went into
    story_sums: dict[str, Vector] | None = None  # story -> its members' vector sum (when asked for)


class StoryState(Protocol):
    """Where records and stories live: per batch one kNN read, one read of everything else and one
    write; every decision is the caller's."""

    def neighbours(self, batch: Sequence[Record], query: CandidateQuery) -> Callable[[], Neighbours]:
        """Start the kNN look-ups of the whole batch; they read only ids, vectors, models and times, so
        they run while the batch is fingerprinted. The returned function waits for the result."""
        ...

    def candidates(
        self, batch: Sequence[Record], query: CandidateQuery, neighbours: Neighbours
    ) -> Candidates:
        """The batch's stored decisions, exact and near-duplicate candidates and the redirects of every
        story found (``neighbours``: what :meth:`neighbours` returned)."""
        ...

    def commit(
        self, records: Sequence[Record], merges: Mapping[str, str], completed: Sequence[Record] = ()
    ) -> list[Record]:
        """Store the batch's new records (create-only: where another worker stored an article first,
        its decision is adopted and returned instead) and update every touched story once; merges
        (absorbed story -> survivor) become redirects. ``completed``: records already stored whose
        story membership is made sure of (a run that stopped between its two writes)."""
        ...

    def vectors(self, article_ids: Sequence[str]) -> dict[str, Vector]:
        """Stored vectors (candidates come with cosines only); used for the rare merge check."""
        ...

    def story_age(self, story_id: str) -> float:
        """When the story was founded (POSIX seconds; inf when unknown): a merge keeps the older one."""
        ...


def _window_ok(a: datetime | None, b: datetime | None, window: timedelta | None) -> bool:
    return window is None or a is None or b is None or abs(a - b) <= window


class MemoryState:
    """Fresh state for one process (the command's default, unit tests); same contract as the ES state."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.stories: dict[str, StoryDoc] = {}
        self._urls: dict[str, list[str]] = {}
        self._hashes: dict[str, list[str]] = {}
        self._bands: dict[str, list[str]] = {}
        self._vector_ids: list[str] = []
        self._vector_rows: list[Vector] = []
        self._matrix: Vector | None = None

    def get(self, article_id: str) -> Record | None:
        return self.records.get(article_id)

    def story(self, story_id: str) -> StoryDoc | None:
        return self.stories.get(story_id)

    def neighbours(self, batch: Sequence[Record], query: CandidateQuery) -> Callable[[], Neighbours]:
        hits: Neighbours = {r.article_id: [] for r in batch}
        if self._vector_ids:
            if self._matrix is None or len(self._matrix) != len(self._vector_ids):
                self._matrix = np.vstack(self._vector_rows)
            pool = [self.records[i] for i in self._vector_ids]
            for r in batch:
                vector = same_story.usable_vector(r.vector)
                if vector is None or len(vector) != self._matrix.shape[1]:
                    continue
                sims = self._matrix @ vector
                ok = np.fromiter(
                    (
                        p.embedding_model == r.embedding_model
                        and p.article_id != r.article_id
                        and _window_ok(r.published, p.published, query.window)
                        for p in pool
                    ),
                    dtype=bool,
                    count=len(pool),
                )
                chosen = np.flatnonzero(ok)
                chosen = chosen[np.argsort(-sims[chosen], kind="stable")[: query.k]]
                hits[r.article_id] = [(pool[int(j)], float(sims[j])) for j in chosen]
        return lambda: hits

    def candidates(
        self, batch: Sequence[Record], query: CandidateQuery, neighbours: Neighbours
    ) -> Candidates:
        ids = {r.article_id for r in batch}
        stored = {i: self.records[i] for i in ids if i in self.records and self.records[i].story_id}
        exact: dict[str, Record] = {}
        near: dict[str, Record] = {}
        for r in batch:
            for key, index in ((r.url_key, self._urls), (r.content_hash, self._hashes)):
                for other in index.get(key or "", []):
                    exact[other] = self.records[other]
            for band in r.bands:
                for other in self._bands.get(band, []):
                    near[other] = self.records[other]
        redirects = {s: d.merged_into for s, d in self.stories.items() if d.merged_into}
        sums = None
        if query.sums:
            sums = {s: d.vector_sum for s, d in self.stories.items() if d.vector_sum is not None}
        return Candidates(stored, list(exact.values()), list(near.values()), neighbours, redirects, sums)

    def commit(
        self, records: Sequence[Record], merges: Mapping[str, str], completed: Sequence[Record] = ()
    ) -> list[Record]:
        out = []
        for record in records:
            existing = self.records.get(record.article_id)
            if existing is not None:
                out.append(existing)
                continue
            self.records[record.article_id] = record
            if record.url_key:
                self._urls.setdefault(record.url_key, []).append(record.article_id)
            if record.content_hash:
                self._hashes.setdefault(record.content_hash, []).append(record.article_id)
            for key in record.bands:
                self._bands.setdefault(key, []).append(record.article_id)
            vector = same_story.usable_vector(record.vector)
            if vector is not None:
                self._vector_ids.append(record.article_id)
                self._vector_rows.append(vector)
            out.append(record)
        now = datetime.now(UTC)
        for story_id, members in _by_story([*out, *completed]).items():
            doc = self.stories.get(story_id) or StoryDoc(story_id, created_at=now)
            self.stories[story_id] = doc.with_members(members)
        for absorbed, survivor in merges.items():
            old = self.stories.get(absorbed) or StoryDoc(absorbed, created_at=now)
            keep = self.stories.get(survivor) or StoryDoc(survivor, created_at=now)
            self.stories[survivor] = keep.absorbing(old)
            self.stories[absorbed] = replace(old, merged_into=survivor)
        return out

    def vectors(self, article_ids: Sequence[str]) -> dict[str, Vector]:
        out = {}
        for i in article_ids:
            record = self.records.get(i)
            if record is not None and record.vector is not None:
                out[i] = record.vector
        return out

    def story_age(self, story_id: str) -> float:
        doc = self.stories.get(story_id)
        return doc.created_at.timestamp() if doc is not None and doc.created_at is not None else math.inf


def _by_story(records: Iterable[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for record in records:
        if record.story_id:
            out.setdefault(record.story_id, []).append(record)
    return out


# ------------------------------------------------------------------------------------------ assigner


@dataclass
class ArticleInput:
    """The fields the algorithm reads; built from CLI records or pipeline `Article`s."""

    id: str
    title: str
    text: str = ""
    lead: str = ""
    url: str | None = None
    lang: str = "other"
    source: str | None = None
    published: datetime | None = None
    vector: Vector | None = None
    embedding_model: str | None = None


def fingerprint(item: ArticleInput) -> Record:
    """Everything the decisions need, computed once per article, from the clipped text (a 2 MB body
    costs what its first :data:`MAX_TEXT_CHARS` characters cost)."""
    title, lead, text = clip_text(item.title, 2000), clip_text(item.lead, 5000), clip_text(item.text)
    full = f"{title}\n{lead}\n{text}" if lead and lead not in text else f"{title}\n{text}"
    signature = minhash(shingles(full, item.lang))
    facts = entity_facts(title, f"{lead}\n{text}", item.lang)
    vector = same_story.usable_vector(item.vector)
    return Record(
        article_id=item.id,
        lang=item.lang,
        title=title,
        source=item.source,
        url=item.url,
        url_key=url_key(item.url),
        content_hash=content_hash(title, text or lead),
        published=item.published,
        signature=signature,
        bands=band_keys(signature, item.lang),
        vector=vector,
        embedding_model=item.embedding_model if vector is not None else None,
        entities=facts.every,
        salient=facts.salient,
        leads=facts.leads,
        numbers=sorted(extract_numbers(full, item.lang)),
        codes=sorted(codes(full)),
        title_codes=sorted(codes(title)),
        names=sorted(names(feature_window(title, lead, text), item.lang) - own_name(item.source)),
    )


@dataclass(frozen=True)
class Params:
    """Knobs of the decision besides the model's own thresholds."""

    threshold: float = DEFAULT_THRESHOLD  # estimated Jaccard for a near-duplicate
    window: timedelta | None = timedelta(hours=DEFAULT_WINDOW_HOURS)  # same story: published this close
    neighbours: int = NEIGHBOURS  # stored kNN candidates per article (and earlier batch articles)
    centroids: bool = False  # cap a story's score by its centroid's (needs the stories' vector sums)


class StoryAssigner:
    """Decides `story_id`, `duplicate_of`, `match` and `score` for a batch against a state: one
    ``candidates`` call, the decisions in memory, one ``commit``."""

    def __init__(self, state: StoryState, params: Params | None = None, model: Model | None = None) -> None:
        self.state = state
        self.params = params or Params()
        self.model = model or load_model()

    def assign(self, item: ArticleInput) -> Record:
        return self.assign_batch([item])[0]

    def assign_batch(self, items: Sequence[ArticleInput]) -> list[Record]:
        """Decide a batch in publication order (then id), so input order never changes the answer;
        results come back in input order (an id given twice gets one decision). The kNN look-ups
        start before the articles are fingerprinted and run meanwhile."""
        unique: dict[str, ArticleInput] = {}
        for item in items:
            unique.setdefault(item.id, item)
        probes = [
            Record(i.id, i.lang, published=i.published, vector=same_story.usable_vector(i.vector))
            for i in unique.values()
        ]
        for probe, item in zip(probes, unique.values(), strict=True):
            probe.embedding_model = item.embedding_model if probe.vector is not None else None
        probes.sort(key=order_key)
        pending = self.state.neighbours(probes, self._query())
        records = {i.id: fingerprint(i) for i in unique.values()}
        return self._assign([records[i.id] for i in items], pending)

    def assign_records(self, records: Sequence[Record]) -> list[Record]:
        """:meth:`assign_batch` for records fingerprinted already."""
        unique = {r.article_id: r for r in reversed(records)}
        return self._assign(
            records, self.state.neighbours(sorted(unique.values(), key=order_key), self._query())
        )

    def _query(self) -> CandidateQuery:
        p = self.params
        return CandidateQuery(p.neighbours, p.window, same_story.fields_for(self.model.needs), p.centroids)

    def _assign(self, records: Sequence[Record], pending: Callable[[], Neighbours]) -> list[Record]:
        unique: dict[str, Record] = {}
        for record in records:
            unique.setdefault(record.article_id, record)
        batch = sorted(unique.values(), key=order_key)
        if not batch:
            pending()
            return []
        p = self.params
        found = self.state.candidates(batch, self._query(), pending())
        redirects = Redirects(found.redirects)
        todo = [r for r in batch if r.article_id not in found.stored]
        known: dict[str, Record] = {}  # stored candidates by id
        for r in (*found.exact, *found.near, *found.stored.values()):
            known[r.article_id] = r
        for row in found.hits.values():
            for r, _ in row:
                known.setdefault(r.article_id, r)
        hit_story = {i: r.story_id for i, r in known.items() if r.story_id}
        prints: dict[str, Fingerprint] = {}

        def fp(record: Record) -> Fingerprint:
            got = prints.get(record.article_id)
            if got is None:
                got = prints[record.article_id] = to_fingerprint(record)
            return got

        result = same_story.assign_batch(
            [fp(r) for r in todo],
            [[(fp(h), c) for h, c in found.hits.get(r.article_id, ())] for r in todo],
            hit_story,
            self.model,
            duplicate_of=self._duplicates(todo, found),
            redirects=redirects,
            neighbours=p.neighbours,
            window_hours=p.window.total_seconds() / 3600 if p.window is not None else None,
            story_sums=found.story_sums,
            story_age=self.state.story_age,
            vectors=self.state.vectors,
        )
        roots = {i: r.duplicate_of or i for i, r in known.items()}
        for decision in result.assignments:
            record = unique[decision.article_id]
            record.story_id, record.match, record.score = decision.story_id, decision.match, decision.score
            original = decision.duplicate_of
            record.duplicate_of = roots.get(original, original) if original else None
            roots[record.article_id] = record.duplicate_of or record.article_id
        stored = list(found.stored.values())
        committed = self.state.commit(todo, result.merges, stored)
        final = {r.article_id: r for r in (*stored, *committed)}
        for key, record in final.items():
            resolved = redirects.resolve(record.story_id) if record.story_id else None
            if resolved != record.story_id:
                final[key] = replace(record, story_id=resolved)
        return [final[r.article_id] for r in records]

    def _duplicates(self, todo: Sequence[Record], found: Candidates) -> dict[str, tuple[str, str, float]]:
        """Exact (URL, content hash) and near (MinHash) duplicates among the stored candidates and the
        earlier articles of the batch: id -> (the article it copies, "exact" | "near", similarity)."""
        by_url: dict[str, list[Record]] = {}
        by_hash: dict[str, list[Record]] = {}
        by_band: dict[str, list[Record]] = {}
        for r in found.exact:
            if r.url_key:
                by_url.setdefault(r.url_key, []).append(r)
            if r.content_hash:
                by_hash.setdefault(r.content_hash, []).append(r)
        for r in found.near:
            for band in r.bands:
                by_band.setdefault(band, []).append(r)
        out: dict[str, tuple[str, str, float]] = {}
        for r in todo:
            original = None
            for key, index in ((r.url_key, by_url), (r.content_hash, by_hash)):
                pool = [c for c in index.get(key or "", []) if c.article_id != r.article_id]
                if pool:
                    original = min(pool, key=order_key)
                    break
            if original is not None:
                out[r.article_id] = (original.article_id, "exact", 1.0)
            elif r.signature is not None:
                near: dict[str, Record] = {}
                for band in r.bands:
                    for c in by_band.get(band, ()):
                        near[c.article_id] = c
                near.pop(r.article_id, None)
                same = [
                    c
                    for c in near.values()
                    if c.lang == r.lang and c.signature is not None and len(c.signature) == len(r.signature)
                ]
                if same:
                    signatures = [c.signature for c in same if c.signature is not None]
                    sims = (np.stack(signatures) == r.signature).mean(axis=1)
                    ok = np.flatnonzero(sims >= self.params.threshold)
                    if len(ok):
                        best = min(ok, key=lambda i: (-sims[i], order_key(same[i])))
                        out[r.article_id] = (same[best].article_id, "near", float(sims[best]))
            # later articles of the batch compare with this one too
            if r.url_key:
                by_url.setdefault(r.url_key, []).append(r)
            if r.content_hash:
                by_hash.setdefault(r.content_hash, []).append(r)
            for band in r.bands:
                by_band.setdefault(band, []).append(r)
        return out


def params_from(settings: Settings, threshold: float | None = None) -> Params:
    return Params(
        threshold=settings.dedupe_threshold if threshold is None else threshold,
        window=timedelta(hours=settings.story_window_hours),
        neighbours=settings.story_neighbours,
        centroids=settings.story_centroids,
    )


def model_from(settings: Settings) -> Model:
    """The same-story model: ``NEWSRADAR_STORY_MODEL`` or the shipped one."""
    return load_model(Path(settings.story_model) if settings.story_model else None)


def article_input(article: Article) -> ArticleInput:
    """What story assignment reads of a pipeline article (after the language and embed stages)."""
    vector = np.asarray(article.embedding, dtype=np.float32) if article.embedding else None
    return ArticleInput(
        id=article.id,
        title=article.title,
        text=article.text,
        lead=article.lead,
        url=article.canonical_url or article.url,
        lang=article.lang or "other",
        source=article.source,
        published=article.published,
        vector=vector,
        embedding_model=article.embedding_model if vector is not None else None,
    )


def decide_all(
    items: Sequence[ArticleInput],
    state: StoryState | None = None,
    params: Params | None = None,
    model: Model | None = None,
) -> list[Record]:
    """Convenience for callers without a state: a fresh in-memory one."""
    return StoryAssigner(state or MemoryState(), params, model).assign_batch(items)


Embed = Callable[[Sequence[str]], Vector]


def fill_vectors(items: Sequence[ArticleInput], embed: Embed, model: str) -> None:
    """Embed the items that carry no vector yet (title + lead, like the pipeline's embed stage)."""
    from enrich.embed import passage_text

    missing = [i for i in items if i.vector is None]
    if not missing:
        return
    vectors = embed([passage_text(i.title, i.lead, i.text) for i in missing])
    for item, vector in zip(missing, vectors, strict=True):
        item.vector = np.asarray(vector, dtype=np.float32)
        item.embedding_model = model
