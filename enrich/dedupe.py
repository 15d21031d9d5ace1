"""Duplicates and stories: one story per event, whatever the outlet or language.

Three tests, cheapest first, each only when the previous one found nothing:

1. **Exact duplicates** share a canonical URL or a hash of their normalised content.
2. **Near-duplicates** (rewritten wire copies) in the same language share MinHash LSH band keys over
   word shingles (de/en) or jieba-token shingles (zh, with catalog names added to jieba so 通义千问
   stays one token), and their estimated Jaccard similarity reaches the threshold. The banding is
   computed here rather than by ``datasketch.MinHashLSH`` so the keys can be stored as keyword terms in
   Elasticsearch and shared by every worker.
3. **Same story** across languages and outlets: the article's nearest stories by embedding *rank*
   (E5 cosines crowd into 0.7–1.0, so no fixed cosine separates "same story" from "same topic"),
   within a time window, confirmed by agreement of salient entities, model codes and numbers.

Otherwise the article founds a new story whose id derives from the article's id. The algorithm talks
to a :class:`StoryState` (in memory here, Elasticsearch in :mod:`index.stories`), so a fresh run and
the pipeline decide identically, and a re-run returns what is stored instead of deciding again.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from enrich.numbers import extract_numbers
from newsradar.article import Article
from newsradar.settings import Settings
from newsradar.text import has_han

NUM_PERM = 128
# Band layout for LSH threshold 0.3 (datasketch's optimum for 128 permutations): every pair a
# sensible --threshold can accept becomes a candidate; the threshold itself is applied on the estimate.
BANDS, ROWS = 37, 3
DEFAULT_THRESHOLD = 0.5
DEFAULT_WINDOW_HOURS = 96.0
DEFAULT_RANK = 3
WIDE_RANK = 10
# Stories compared per article: the neighbours are fetched generously and re-ranked exactly here.
NEIGHBOURS_FETCHED = 40
_MIN_HASH_CHARS = 30  # shorter normalised content (a bare short title) is too generic to hash
_BODY_HASH_CHARS = 200  # a body this long identifies the copy even under a different headline
NUMBER_CONFLICT_PENALTY = 2.0
NAME_OVERLAP = 0.1  # share of the shorter name list both articles use
STRONG_NAME_OVERLAP = 0.25
_GENERIC_ENTITY_TYPES = {"country", "jurisdiction"}

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CODE = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,8}-?\d+(?:\.\d+)?[A-Za-z]{0,3}|\d+[A-Za-z]{1,3}\d*[A-Za-z]*)(?![A-Za-z0-9])"
)
_NOT_CODES = re.compile(r"^(?:\d+(?:k|m|b|bn|mn|mrd|mio|st|nd|rd|th|s|h|min|am|pm|kg|km|gb|tb|mb)|[a-z]\d)$")

Vector = npt.NDArray[np.float32]


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


@lru_cache(maxsize=1)
def _jieba() -> Any:
    """jieba with the catalog's Chinese names as words, so product names are not split into characters."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    from enrich.entities import catalog

    for alias in catalog().aliases:
        if not alias.is_regex and has_han(alias.text):
            tokenizer.add_word(alias.text, freq=20000)
    return tokenizer


def tokens(text: str, lang: str | None) -> list[str]:
    """Words for shingling: jieba tokens for Chinese, Unicode words otherwise (numbers kept)."""
    norm = unicodedata.normalize("NFKC", text).lower()
    if lang == "zh" or (lang is None and has_han(norm)):
        out = []
        for token in _jieba().lcut(norm):
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
    from enrich.entities import catalog, find_entities

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


# ------------------------------------------------------------------------------------------ records


@dataclass
class Record:
    """What the state keeps per article: enough to compare a later article without re-reading it."""

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


@dataclass
class Story:
    """Story-level facts: who reported first, who followed, in which languages."""

    story_id: str
    first_article_id: str
    first_source: str | None
    first_lang: str
    first_published: datetime | None
    first_title: str
    first_url: str | None
    outlets: list[str]
    languages: list[str]
    article_ids: list[str]

    @property
    def size(self) -> int:
        return len(self.article_ids)


def _order_key(record: Record) -> tuple[bool, datetime, str]:
    far = datetime.max.replace(tzinfo=UTC)
    return (record.published is None, record.published or far, record.article_id)


def merge_story(story: Story | None, record: Record) -> Story:
    """Add one member; idempotent (a member already counted changes nothing), order-independent."""
    assert record.story_id is not None
    if story is None:
        story = Story(
            record.story_id,
            record.article_id,
            record.source,
            record.lang,
            record.published,
            record.title,
            record.url,
            [],
            [],
            [],
        )
    if record.article_id in story.article_ids:
        return story
    story = replace(
        story,
        outlets=sorted({*story.outlets, *([record.source] if record.source else [])}),
        languages=sorted({*story.languages, record.lang}),
        article_ids=sorted({*story.article_ids, record.article_id}),
    )
    first = Record(story.first_article_id, story.first_lang, published=story.first_published)
    if _order_key(record) < _order_key(first):
        story = replace(
            story,
            first_article_id=record.article_id,
            first_source=record.source,
            first_lang=record.lang,
            first_published=record.published,
            first_title=record.title,
            first_url=record.url,
        )
    return story


def story_id_for(article_id: str) -> str:
    """Deterministic: the same founding article gives the same story id on every worker and re-run."""
    return "s-" + hashlib.sha1(f"story:{article_id}".encode()).hexdigest()[:18]


# ------------------------------------------------------------------------------------------ state


class StoryState(Protocol):
    """Where records and stories live. Queries return candidates; every decision is made by the caller."""

    def get(self, article_id: str) -> Record | None: ...

    def by_url(self, key: str) -> list[Record]: ...

    def by_hash(self, digest: str) -> list[Record]: ...

    def by_bands(self, keys: Sequence[str]) -> list[Record]: ...

    def nearest(
        self, vector: Vector, model: str | None, since: datetime | None, until: datetime | None, k: int
    ) -> list[Record]: ...

    def add(self, record: Record) -> Record:
        """Store a new record; when another worker stored this article first, return theirs."""
        ...

    def add_to_story(self, record: Record) -> Story: ...

    def story(self, story_id: str) -> Story | None: ...


class MemoryState:
    """Fresh state for one process (the CLI default and unit tests); same contract as the ES state."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.stories: dict[str, Story] = {}
        self._urls: dict[str, list[str]] = {}
        self._hashes: dict[str, list[str]] = {}
        self._bands: dict[str, list[str]] = {}

    def get(self, article_id: str) -> Record | None:
        return self.records.get(article_id)

    def by_url(self, key: str) -> list[Record]:
        return [self.records[i] for i in self._urls.get(key, [])]

    def by_hash(self, digest: str) -> list[Record]:
        return [self.records[i] for i in self._hashes.get(digest, [])]

    def by_bands(self, keys: Sequence[str]) -> list[Record]:
        ids = {i for key in keys for i in self._bands.get(key, [])}
        return [self.records[i] for i in sorted(ids)]

    def nearest(
        self, vector: Vector, model: str | None, since: datetime | None, until: datetime | None, k: int
    ) -> list[Record]:
        pool = [
            r
            for r in self.records.values()
            if r.vector is not None
            and r.embedding_model == model
            and (r.published is None or since is None or since <= r.published)
            and (r.published is None or until is None or r.published <= until)
        ]
        pool.sort(key=lambda r: -float(np.dot(vector, r.vector)))  # type: ignore[arg-type]
        return pool[:k]

    def add(self, record: Record) -> Record:
        existing = self.records.get(record.article_id)
        if existing is not None:
            return existing
        self.records[record.article_id] = record
        if record.url_key:
            self._urls.setdefault(record.url_key, []).append(record.article_id)
        if record.content_hash:
            self._hashes.setdefault(record.content_hash, []).append(record.article_id)
        for key in record.bands:
            self._bands.setdefault(key, []).append(record.article_id)
        return record

    def add_to_story(self, record: Record) -> Story:
        assert record.story_id is not None
        story = merge_story(self.stories.get(record.story_id), record)
        self.stories[record.story_id] = story
        return story

    def story(self, story_id: str) -> Story | None:
        return self.stories.get(story_id)


# ------------------------------------------------------------------------------------------ decisions


@dataclass(frozen=True)
class Evidence:
    """Why two articles are (or are not) one story; kept for explanations and the benchmark."""

    entities: int  # salient in both
    codes: int
    numbers: int  # informative numbers both quote
    number_conflict: bool  # both quote large figures, none the same
    entity_conflict: bool  # both have protagonists from the catalog, and they differ
    shared_names: int = 0
    name_overlap: float = 0.0

    @property
    def score(self) -> float:
        names = 0.0
        if self.shared_names >= 2:
            names = float(self.name_overlap >= NAME_OVERLAP) + float(self.name_overlap >= STRONG_NAME_OVERLAP)
        conflict = NUMBER_CONFLICT_PENALTY if self.number_conflict else 0.0
        return min(self.entities, 3) + min(self.codes, 2) + min(self.numbers, 2) + names - conflict


def evidence(a: Record, b: Record) -> Evidence:
    """Agreement between two articles beyond their embeddings.

    Entities count when both articles treat them as salient (named in the title or repeatedly);
    when both have catalog protagonists (title entities) and share none, or both headline a model or
    chip code ("H20", "B30") and the codes differ, they report on different things, which no
    embedding closeness overrides. Numbers conflict when both quote large figures and none agree: a
    different count of listed firms is a different story. Small integers (days, counts below 32) are
    not counted as agreement: unrelated stories of the same week share them.
    """
    ents = set(a.salient) & set(b.salient)
    shared_codes = set(a.codes) & set(b.codes)
    nums_a, nums_b = set(a.numbers), set(b.numbers)
    shared_numbers = {n for n in nums_a & nums_b if _informative(n)}
    big_a, big_b = {n for n in nums_a if _big(n)}, {n for n in nums_b if _big(n)}
    number_conflict = bool(big_a and big_b and not (big_a & big_b))
    entity_conflict = bool(a.leads and b.leads and not set(a.leads) & set(b.leads)) or bool(
        a.title_codes and b.title_codes and not set(a.title_codes) & set(b.title_codes)
    )
    names_a, names_b = set(a.names), set(b.names)
    shared_names = len(names_a & names_b)
    overlap = shared_names / max(1, min(len(names_a), len(names_b)))
    return Evidence(
        len(ents),
        len(shared_codes),
        len(shared_numbers),
        number_conflict,
        entity_conflict,
        shared_names,
        overlap,
    )


def _value(number: str) -> float:
    try:
        return float(number.rstrip("%"))
    except ValueError:
        return 0.0


def _big(number: str) -> bool:
    return number.endswith("%") or _value(number) >= 1000


def _informative(number: str) -> bool:
    value = _value(number)
    return number.endswith("%") or not value.is_integer() or value >= 32


@dataclass(frozen=True)
class Params:
    """Knobs of the decision; defaults measured with ``python -m bench.neardup`` and the fixtures."""

    threshold: float = DEFAULT_THRESHOLD  # estimated Jaccard for a near-duplicate
    window: timedelta = timedelta(hours=DEFAULT_WINDOW_HOURS)  # same story: published this close
    rank: int = DEFAULT_RANK  # same story: among this many nearest stories
    min_evidence: float = 2.0  # same story: agreement needed beyond the embedding
    wide_rank: int = WIDE_RANK  # ... or among this many, with strong catalog agreement
    wide_evidence: float = 4.0


def same_story(ev: Evidence, story_rank: int, params: Params) -> bool:
    """The cross-outlet decision: close by rank and confirmed by facts the embedding cannot see.

    Cross-language neighbours rank lower than same-language ones (a Chinese report's nearest stories
    are often other Chinese reports), so stories a little further down the ranking are accepted
    when they share at least two protagonists and much other evidence."""
    if ev.entity_conflict:
        return False
    if story_rank <= params.rank:
        needed = params.min_evidence - 1.0 if story_rank == 1 else params.min_evidence
        return ev.score >= needed
    return story_rank <= params.wide_rank and ev.entities >= 2 and ev.score >= params.wide_evidence


def within(a: datetime | None, b: datetime | None, window: timedelta) -> bool:
    """Unknown times do not veto (the record has no date), known ones must be within the window."""
    return a is None or b is None or abs(a - b) <= window


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
    """Everything the decisions need, computed once per article."""
    full = (
        f"{item.title}\n{item.lead}\n{item.text}"
        if item.lead and item.lead not in item.text
        else (f"{item.title}\n{item.text}")
    )
    signature = minhash(shingles(full, item.lang))
    facts = entity_facts(item.title, f"{item.lead}\n{item.text}", item.lang)
    return Record(
        article_id=item.id,
        lang=item.lang,
        title=item.title,
        source=item.source,
        url=item.url,
        url_key=url_key(item.url),
        content_hash=content_hash(item.title, item.text or item.lead),
        published=item.published,
        signature=signature,
        bands=band_keys(signature, item.lang),
        vector=item.vector,
        embedding_model=item.embedding_model,
        entities=facts.every,
        salient=facts.salient,
        leads=facts.leads,
        numbers=sorted(extract_numbers(full, item.lang)),
        codes=sorted(codes(full)),
        title_codes=sorted(codes(item.title)),
        names=sorted(names(full, item.lang) - own_name(item.source)),
    )


def own_name(source: str | None) -> set[str]:
    """The words of the outlet's own name: its bylines and "Circuit Daily reports" say nothing about
    which story an article tells, yet would count as shared names between any two of its articles."""
    return {part for part in re.split(r"[^a-z0-9]+", (source or "").lower()) if len(part) >= 2}


def _root(record: Record) -> str:
    return record.duplicate_of or record.article_id


def _earliest(records: Iterable[Record], exclude: str) -> Record | None:
    pool = [r for r in records if r.article_id != exclude and r.story_id]
    return min(pool, key=_order_key) if pool else None


class StoryAssigner:
    """Decides `story_id` and `duplicate_of` for articles against a state, one article at a time."""

    def __init__(self, state: StoryState, params: Params | None = None) -> None:
        self.state = state
        self.params = params or Params()

    def assign_batch(self, items: Sequence[ArticleInput]) -> list[Record]:
        """Decide a batch in publication order (then id), so input order never changes the answer;
        results come back in input order."""
        order = sorted(
            range(len(items)), key=lambda i: _order_key(Record(items[i].id, "", published=items[i].published))
        )
        out: dict[int, Record] = {}
        for index in order:
            out[index] = self.assign(items[index])
        return [out[i] for i in range(len(items))]

    def assign(self, item: ArticleInput) -> Record:
        stored = self.state.get(item.id)
        if stored is not None and stored.story_id:
            # A re-run or another worker already decided: keep that answer (and complete the story
            # in case that run stopped between its two writes; the merge is idempotent).
            self.state.add_to_story(stored)
            return stored
        record = fingerprint(item)
        self._decide(record)
        stored = self.state.add(record)
        self.state.add_to_story(stored)
        return stored

    def _decide(self, record: Record) -> None:
        exact = None
        if record.url_key:
            exact = _earliest(self.state.by_url(record.url_key), record.article_id)
            if exact is not None:
                record.match = "url"
        if exact is None and record.content_hash:
            exact = _earliest(self.state.by_hash(record.content_hash), record.article_id)
            if exact is not None:
                record.match = "hash"
        if exact is not None:
            record.story_id, record.duplicate_of, record.score = exact.story_id, _root(exact), 1.0
            return
        if self._near_duplicate(record) is not None or self._same_story(record):
            return
        record.story_id, record.duplicate_of, record.match = story_id_for(record.article_id), None, "new"

    def _near_duplicate(self, record: Record) -> Record | None:
        """The most similar same-language copy above the threshold (ties: the earliest)."""
        assert record.signature is not None
        scored = []
        for cand in self.state.by_bands(record.bands):
            if cand.article_id == record.article_id or cand.signature is None or not cand.story_id:
                continue
            if cand.lang != record.lang:
                continue
            sim = jaccard(record.signature, cand.signature)
            if sim >= self.params.threshold:
                scored.append(((-sim, _order_key(cand)), cand))
        if not scored:
            return None
        (neg_sim, _), best = min(scored, key=lambda pair: pair[0])
        record.story_id, record.duplicate_of = best.story_id, _root(best)
        record.match, record.score = "near", -neg_sim
        return best

    def _same_story(self, record: Record) -> bool:
        if record.vector is None:
            return False
        p = self.params
        since = record.published - p.window if record.published else None
        until = record.published + p.window if record.published else None
        pool = self.state.nearest(record.vector, record.embedding_model, since, until, NEIGHBOURS_FETCHED)
        ranked = sorted(
            (r for r in pool if r.article_id != record.article_id and r.story_id and r.vector is not None),
            key=lambda r: (-float(np.dot(record.vector, r.vector)), r.article_id),  # type: ignore[arg-type]
        )
        seen: list[str] = []
        best: tuple[float, int, Record] | None = None
        for cand in ranked:
            assert cand.story_id is not None
            if cand.story_id not in seen:
                seen.append(cand.story_id)
            rank = seen.index(cand.story_id) + 1
            if rank > max(p.rank, p.wide_rank):
                break
            if not within(record.published, cand.published, p.window):
                continue
            ev = evidence(record, cand)
            if same_story(ev, rank, p) and (best is None or (ev.score, -rank) > (best[0], -best[1])):
                best = (ev.score, rank, cand)
        if best is None:
            return False
        record.story_id, record.duplicate_of, record.match, record.score = (
            best[2].story_id,
            None,
            "story",
            best[0],
        )
        return True


def params_from(settings: Settings, threshold: float | None = None) -> Params:
    return Params(
        threshold=settings.dedupe_threshold if threshold is None else threshold,
        window=timedelta(hours=settings.story_window_hours),
        rank=settings.story_rank,
    )


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
    items: Sequence[ArticleInput], state: StoryState | None = None, params: Params | None = None
) -> list[Record]:
    """Convenience for callers without a state: a fresh in-memory one."""
    return StoryAssigner(state or MemoryState(), params).assign_batch(items)


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
