"""Query understanding across scripts: what an analyst's words mean in all three languages.

A query's text is read as *units* — the things the analyst asks for — each with its spellings in
German, English and Chinese, so "Exportkontrollen Nvidia-Chips", "Nvidia chip export controls" and
"英伟达芯片出口管制" all become the same three units (export control, Nvidia, chip):

* **entities** from the entity catalog (``enrich.entities``): every alias of the entity (Kling ↔ 可灵,
  Qwen ↔ 通义千问, DeepSeek ↔ 深度求索), plus the ``entities`` field enrichment wrote on each article;
* **concepts** from the query vocabulary (``index/vocabulary.yaml``): event and topic words (export
  controls ↔ Exportkontrollen ↔ 出口管制); German compounds typed in the query are split on them
  ("Böllerverbot" = Böller + ban);
* **words**: everything else. Chinese is segmented into words (jieba, with the catalog's names and
  the vocabulary's Chinese terms as words), so "英伟达芯片出口管制" is searched as words, not as one
  seven-character phrase; Latin words of five letters or more also match by stem (prefix), which is
  what the standard analyzer of the local node lacks.

Stop words ("the", "für", "的") are dropped; words too general to be required ("AI", "model") are
optional: they add score, but a document need not contain them. The module is pure (no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from enrich.entities import catalog, chinese_segmenter, entity_aliases
from newsradar.text import CJK, HAN, has_han

VOCABULARY_PATH = Path(__file__).with_name("vocabulary.yaml")
LANGS = ("en", "de", "zh")

_STOP = """
a an the of in on at to for from by with and or as is are was be its it this that over into after about
against amid says new
der die das den dem des ein eine einen einem einer und oder für von vom zu zum zur mit im in am an auf aus
bei nach über gegen wegen ist sind wird werden soll will neue neuen neuer neues
的 了 在 被 对 将 等 与 和 向 及 为 是 也 又 或 把 让 给 后 于 中 上 下 个 这 那 其 已 并 称
"""
STOP_WORDS = frozenset(_STOP.split())
# Chinese characters that alone carry no query meaning (after segmentation leaves them single).
_CJK_FILLER = frozenset("的了在被对将等与和向及为是也又或把让给后于之其已并称就都而新版")
_LATIN_TOKEN = re.compile(r"[0-9A-Za-zÀ-ɏ][0-9A-Za-zÀ-ɏ.'’+-]*[0-9A-Za-zÀ-ɏ+]|[0-9A-Za-zÀ-ɏ]")
_LATIN_LETTER = "a-z0-9äöüßà-ɏ"
_STEM_MIN = 5  # Latin words this long also match by stem
GENERIC_ENTITY_TYPES = frozenset({"country", "jurisdiction"})  # too broad to anchor a query
_GERMAN_ENDINGS = ("ern", "en", "er", "es", "e", "n", "s")
_ENGLISH_ENDINGS = ("ing", "ies", "es", "ed", "s")


@dataclass(frozen=True)
class Term:
    """One spelling to search: a phrase, or a Latin stem matched as a prefix."""

    text: str
    prefix: bool = False


@dataclass(frozen=True)
class Concept:
    key: str
    terms: dict[str, tuple[Term, ...]]
    event: str | None = None
    optional: bool = False

    def all_terms(self) -> tuple[Term, ...]:
        seen: dict[Term, None] = {}
        for lang in LANGS:
            for term in self.terms.get(lang, ()):
                seen.setdefault(term, None)
        return tuple(seen)


@dataclass(frozen=True)
class Unit:
    """One thing the query asks for: an entity, a concept, or a word, with what to search for it."""

    kind: str  # entity | concept | word | version
    key: str  # canonical entity name, concept key, or the word as typed (lower case)
    surface: str  # as typed
    terms: tuple[Term, ...]
    event: str | None = None
    optional: bool = False
    anchor: bool = False  # a named company, model, product, agency or person: documents must have it
    parent: str | None = None  # the entity's owner in the catalog (Qwen -> Alibaba): a weaker match


@dataclass
class Understanding:
    units: list[Unit] = field(default_factory=list)

    @property
    def entities(self) -> list[str]:
        return [u.key for u in self.units if u.kind == "entity"]

    @property
    def concepts(self) -> list[str]:
        return [u.key for u in self.units if u.kind == "concept"]

    @property
    def required(self) -> list[Unit]:
        return [u for u in self.units if not u.optional]

    def render(self, lang: str) -> str:
        """The query in another language, unit by unit (entities by their alias in that language,
        concepts by their first spelling, words as typed): what a multilingual embedding of the
        query is averaged over, so it does not favour documents in the language the analyst typed."""
        parts: list[str] = []
        for unit in self.units:
            if unit.kind == "version":
                continue  # its entity, spelt as typed, says it
            if unit.kind == "entity":
                names = entity_aliases(unit.key, lang)
                if _versioned(unit.surface, unit.key):
                    parts.append(unit.surface)  # GPT-5 is GPT-5 in every language
                else:
                    parts.append(names[0] if names else unit.key)
            elif unit.kind == "concept":
                terms = vocabulary()[unit.key].terms.get(lang) or ()
                parts.append(terms[0].text if terms else unit.surface)
            else:
                parts.append(unit.surface)
        if lang != "zh":
            return " ".join(parts)
        out = ""
        for part in parts:  # Chinese runs together, Latin words keep their spaces: "Yi 2.0 推理"
            latin_seam = out and not has_han(out[-1]) and not has_han(part[:1])
            out += (" " if latin_seam else "") + part
        return out

    def describe(self) -> str:
        """How the query was read, e.g. ``entity:Nvidia concept:export-control word:h200``."""
        return " ".join(f"{u.kind}:{u.key}" + ("?" if u.optional else "") for u in self.units)


def _term(text: str) -> Term:
    text = text.strip().lower()
    return Term(text[:-1], True) if text.endswith("*") else Term(text)


@lru_cache(maxsize=1)
def vocabulary(path: Path = VOCABULARY_PATH) -> dict[str, Concept]:
    raw = yaml.safe_load(path.read_text("utf-8"))["concepts"]
    out: dict[str, Concept] = {}
    for key, spec in raw.items():
        terms = {lang: tuple(_term(str(t)) for t in spec.get(lang) or ()) for lang in LANGS}
        out[str(key)] = Concept(str(key), terms, spec.get("event"), bool(spec.get("optional")))
    return out


@lru_cache(maxsize=1)
def _concept_patterns() -> list[tuple[re.Pattern[str], str, int]]:
    """(pattern, concept key, length of the spelling) for every spelling, longest first. German
    spellings of five letters or more may start inside a query word: compounds."""
    items: list[tuple[int, re.Pattern[str], str, bool]] = []
    for concept in vocabulary().values():
        for lang in LANGS:
            for term in concept.terms.get(lang, ()):
                if has_han(term.text):
                    items.append((len(term.text), re.compile(re.escape(term.text)), concept.key, True))
                    continue
                body = re.escape(term.text)
                tail = f"[{_LATIN_LETTER}-]*" if term.prefix else f"(?![{_LATIN_LETTER}])"
                inside = lang == "de" and len(term.text) >= _STEM_MIN
                head = "" if inside else f"(?<![{_LATIN_LETTER}])"
                items.append((len(term.text), re.compile(head + body + tail), concept.key, inside))
    items.sort(key=lambda item: -item[0])
    return [(pattern, key, length) for length, pattern, key, _ in items]


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    """The catalog's segmenter with the vocabulary's Chinese terms as words too."""
    terms = (t.text for c in vocabulary().values() for t in c.terms.get("zh", ()) if len(t.text) > 1)
    return chinese_segmenter(tuple(dict.fromkeys(terms)))


def segment(text: str) -> list[str]:
    """Chinese words of a text (jieba), other runs as they are; punctuation and spaces dropped."""
    return [w for w in _segmenter().lcut(text) if w.strip() and re.search(r"\w", w)]


def _stem(word: str) -> str | None:
    """A prefix that covers a Latin word's inflections and compounds (crude, language-agnostic):
    Verbote → verbot, exports → export. None for short words and numbers."""
    if len(word) < _STEM_MIN or not word.isalpha():
        return None
    for ending in (*_ENGLISH_ENDINGS, *_GERMAN_ENDINGS):
        if word.endswith(ending) and len(word) - len(ending) >= _STEM_MIN - 1:
            return word[: -len(ending)]
    return word


def _entity_unit(name: str, surface: str) -> Unit:
    terms = tuple(dict.fromkeys(Term(a.lower()) for a in entity_aliases(name)))
    entity = catalog().entities[name]
    anchor = entity.type not in GENERIC_ENTITY_TYPES
    return Unit("entity", name, surface, terms, anchor=anchor, parent=entity.parent)


def _versioned(surface: str, name: str) -> bool:
    """Whether an entity was typed with a version or variant the catalog's pattern took in (GPT-5,
    Kimi K3, Claude 4.5, Qwen3-Max): Latin text with a digit that is not one of its plain aliases."""
    lowered = surface.lower()
    return (
        any(c.isdigit() for c in surface)
        and not has_han(surface)
        and lowered not in (a.lower() for a in entity_aliases(name))
    )


def _version_unit(surface: str) -> Unit:
    """The typed version of a model (GPT-5): optional, scored by BM25 — documents naming this version
    (GPT-5, GPT-5.1, GPT-5.6: matched as a phrase whose last word is a prefix) rank above the same
    model's other versions, which still match through the entity."""
    text = re.sub(r"[^0-9a-z.]+", " ", surface.lower()).strip()
    return Unit("version", text, surface, (Term(text, True),), optional=True)


def _concept_unit(key: str, surface: str) -> Unit:
    concept = vocabulary()[key]
    return Unit("concept", key, surface, concept.all_terms(), concept.event, concept.optional)


def _word_units(text: str) -> list[Unit]:
    """Leftover text: Latin tokens and segmented Chinese words, stop words dropped."""
    units: list[Unit] = []
    for token in re.findall(r"[^\s]+", text):
        for piece in segment(token) if CJK.search(token) else _LATIN_TOKEN.findall(token):
            word = piece.lower().strip(".'’-")
            if not word or word in STOP_WORDS:
                continue
            if CJK.search(word):
                if len(word) == 1 and word in _CJK_FILLER:
                    continue
                if len(word) == 1:  # a single character left over says little: score only
                    units.append(Unit("word", word, piece, (Term(word),), optional=True))
                    continue
                # a long word also matches by its parts: 燃放烟花 finds 烟花
                parts = (
                    [p for p in _segmenter().lcut_for_search(word) if len(p) >= 2] if len(word) >= 4 else []
                )
                pieces = tuple(dict.fromkeys([Term(word), *(Term(p) for p in parts)]))
                units.append(Unit("word", word, piece, pieces))
                continue
            latin = [Term(word)]
            stem = _stem(word)
            if stem is not None:
                latin.append(Term(stem, True))
            units.append(Unit("word", word, piece, tuple(latin)))
    return units


MAX_UNDERSTOOD_CHARS = 300  # an analyst's query; beyond this, text is searched as typed, not read


@lru_cache(maxsize=1024)
def understand(text: str) -> Understanding:
    """Units of a query's text (the words and phrases of one leaf of the query syntax). Pasted
    paragraphs are read up to `MAX_UNDERSTOOD_CHARS` only."""
    text = text[:MAX_UNDERSTOOD_CHARS]
    lowered = text.lower()
    taken = [False] * len(text)
    found: list[tuple[int, Unit]] = []
    for span in catalog().spans(text):
        if any(taken[span.start : span.end]):
            continue
        for i in range(span.start, span.end):
            taken[i] = True
        surface = text[span.start : span.end]
        found.append((span.start, _entity_unit(span.alias.entity, surface)))
        if _versioned(surface, span.alias.entity):
            found.append((span.start, _version_unit(surface)))
    for pattern, key, length in _concept_patterns():
        for match in pattern.finditer(lowered):
            start, end = match.span()
            # A stem runs on over the rest of a compound ("böller*" over "Böllerverbot"): it ends
            # where a concept found before begins, if its spelling still fits.
            end = next((i for i in range(start, end) if taken[i]), end)
            if end - start < max(length, 1) or any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            found.append((start, _concept_unit(key, text[start:end])))
    # leftovers, in order, between the matched spans
    run: int | None = None
    for i in range(len(text) + 1):
        free = i < len(text) and not taken[i]
        if free and run is None:
            run = i
        elif not free and run is not None:
            for unit in _word_units(text[run:i]):
                found.append((run, unit))
            run = None
    found.sort(key=lambda item: item[0])
    units: list[Unit] = []
    seen: set[tuple[str, str]] = set()
    for _, unit in found:
        if (unit.kind, unit.key) in seen:
            continue
        seen.add((unit.kind, unit.key))
        units.append(unit)
    return Understanding(units)


def has_cjk(text: str) -> bool:
    return HAN.search(text) is not None


# --- matching a document's text here (for re-ranking) -------------------------------------------

_NON_WORD = re.compile(r"[\W_]+")


def normal_text(text: str) -> str:
    """Lower case, every run of non-word characters one space: roughly what the standard analyzer
    leaves of a text, so "GPT-5.1" reads "gpt 5 1" and the phrase "gpt 5" is found in it."""
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


@lru_cache(maxsize=4096)
def _term_pattern(term: Term) -> re.Pattern[str]:
    text = normal_text(term.text).strip()
    if has_han(text):  # characters in order, as a phrase over the standard analyzer's characters
        return re.compile(re.escape(text.replace(" ", "")))
    tail = "" if term.prefix else f"(?![{_LATIN_LETTER}])"
    return re.compile(f"(?<![{_LATIN_LETTER}])" + re.escape(text) + tail)


def unit_matcher(unit: Unit) -> Callable[[str, set[str] | frozenset[str]], bool]:
    """A test of whether a document has the unit: an entity in its `entities` field, or any spelling
    in its text (`text` from :func:`normal_text`). Built once per query, applied to every candidate."""
    patterns = [(_term_pattern(t), has_han(t.text)) for t in unit.terms]
    key = unit.key if unit.kind == "entity" else None

    def found(text: str, entities: set[str] | frozenset[str] = frozenset()) -> bool:
        if key is not None and key in entities:
            return True
        compact = None
        for pattern, han in patterns:
            if han:
                compact = text.replace(" ", "") if compact is None else compact
                if pattern.search(compact):
                    return True
            elif pattern.search(text):
                return True
        return False

    return found


def unit_found(unit: Unit, text: str, entities: set[str] | frozenset[str] = frozenset()) -> bool:
    """Whether a document has the unit (see :func:`unit_matcher`)."""
    return unit_matcher(unit)(text, entities)


# --- to Elasticsearch --------------------------------------------------------------------------


@dataclass(frozen=True)
class Boosts:
    """How much each kind of match weighs (chosen on the dev queries, see docs/search.md)."""

    entity_field: float = 2.0  # the article's `entities` names the query's entity
    parent: float = 0.5  # ... or only its owner (query Qwen, article about Alibaba)
    alias: float = 1.0  # an alias of the entity in the text, any language
    concept: float = 1.0  # a spelling of the concept, any language
    word: float = 1.0
    stem: float = 0.5  # a Latin word matched by its stem only
    event: float = 0.3  # the article's event type is the concept's (never a match alone)
    optional: float = 0.3  # optional units (AI, model): score only
    version: float = 1.0  # the typed version of a model (GPT-5): scored, never required
    tie_breaker: float = 0.1  # extra spellings of the same unit matching add this much
    anchors: bool = True  # named companies, models, agencies, people in a query must be matched


def min_should_match(required: int) -> int:
    """Units a document must match: all of one or two, all but one of three to five, then 3/4."""
    if required <= 2:
        return required
    if required <= 5:
        return required - 1
    return (required * 3) // 4


def _term_query(term: Term, fields: list[str], boost: float) -> dict[str, Any]:
    kind = "phrase_prefix" if term.prefix else "phrase"
    clause: dict[str, Any] = {"query": term.text, "fields": fields, "type": kind, "boost": boost}
    if term.prefix:
        clause["max_expansions"] = 30
    return {"multi_match": clause}


def unit_query(unit: Unit, fields: list[str], boosts: Boosts) -> dict[str, Any]:
    """Any spelling of the unit, in any field: the best one counts (dis_max)."""
    alternatives: list[dict[str, Any]] = []
    if unit.kind == "entity":
        alternatives.append(
            {
                "term": {
                    "entities": {"value": unit.key, "case_insensitive": True, "boost": boosts.entity_field}
                }
            }
        )
        if unit.parent and boosts.parent > 0:
            alternatives.append({"term": {"entities": {"value": unit.parent, "boost": boosts.parent}}})
    weight = {
        "entity": boosts.alias,
        "concept": boosts.concept,
        "word": boosts.word,
        "version": boosts.version,
    }[unit.kind]
    for term in unit.terms:
        boost = boosts.stem if (unit.kind == "word" and term.prefix) else weight
        alternatives.append(_term_query(term, fields, boost))
    if len(alternatives) == 1:
        return alternatives[0]
    return {"dis_max": {"queries": alternatives, "tie_breaker": boosts.tie_breaker}}


def understood_query(
    reading: Understanding, fields: list[str], boosts: Boosts = Boosts()
) -> dict[str, Any] | None:
    """The units as one query. A document matches when it has most of the required units (its own
    language's words included), or — across languages — all the units that have spellings in every
    language (entities and concepts) when there are at least two of them; words no other language
    spells then only add score. A named company, model or agency (an anchor) is required, and then
    one unit fewer of the rest: "Kling video generation model" must find "快手可灵AI迎来最强更新",
    which names Kling and no video. Optional units and event types add score."""
    required = reading.required
    if not required:
        if not reading.units:
            return None
        required = reading.units  # only optional words typed ("AI"): then they are the query
    anchors = [u for u in required if u.anchor] if boosts.anchors else []
    rest = [u for u in required if u not in anchors]
    must = [unit_query(u, fields, boosts) for u in anchors]
    ranking: list[dict[str, Any]] = []  # required units a document may lack: they only add score
    if rest:
        clauses = [unit_query(u, fields, boosts) for u in rest]
        need = min_should_match(len(clauses)) if not anchors else max(0, min_should_match(len(clauses)) - 1)
        if need == 0:  # a named thing and one more unit: the name alone makes a match
            ranking, rest = clauses, []
    if rest:
        loose: dict[str, Any] = {"bool": {"should": clauses, "minimum_should_match": need}}
        translatable = [u for u in rest if u.kind != "word"]
        if translatable and len(translatable) < len(rest) and len(translatable) + len(anchors) >= 2:
            cross = [unit_query(u, fields, boosts) for u in translatable]
            need = len(cross) if len(cross) <= 3 else min_should_match(len(cross))
            loose = {
                "bool": {
                    "should": [loose, {"bool": {"should": cross, "minimum_should_match": need}}],
                    "minimum_should_match": 1,
                }
            }
        must.append(loose)
    core: dict[str, Any] = must[0] if len(must) == 1 else {"bool": {"must": must}}
    extras: list[dict[str, Any]] = list(ranking)
    for unit in reading.units:
        if unit.kind == "version":
            extras.append(unit_query(unit, fields, boosts))
        elif unit not in required:
            query = unit_query(unit, fields, boosts)
            extras.append({"constant_score": {"filter": query, "boost": boosts.optional}})
    for event in dict.fromkeys(u.event for u in reading.units if u.event and not u.optional):
        extras.append({"constant_score": {"filter": {"term": {"event_types": event}}, "boost": boosts.event}})
    if not extras:
        return core
    return {"bool": {"must": [core], "should": extras}}
