"""Catalog-based entity recognition for German, English and Chinese news titles and texts.

Why a catalog instead of an NER model: the radar cares about a closed, slowly changing set of
companies, models, agencies and jurisdictions, and alerts must be explainable ("matched 可灵").
No multilingual NER model is installable offline, and a reviewed alias list is both more precise
on product names and trivially extended by editors (``catalog/entities.yaml``).

Matching is done with three compiled patterns so an article costs one regex pass each:

* a trie-shaped regex over case-sensitive literal aliases (all Chinese aliases and short Latin ones),
* a trie-shaped, case-insensitive regex over longer Latin aliases,
* the catalog's ``re:`` aliases, each only run when its literal core occurs in the text.

Overlapping candidates are resolved leftmost-longest, so 美国商务部 is the Commerce Department and not
"US" + "MOFCOM", and 阿里巴巴 is not cut to 阿里. Latin aliases need ASCII-letter boundaries on their
Latin ends (Python's ``\\b`` treats Han characters as word characters, which would reject "OpenAI发布").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from newsradar.text import HAN_CLASS, has_han

CATALOG_PATH = Path(__file__).with_name("catalog") / "entities.yaml"
ENTITY_TYPES = ("org", "model", "product", "country", "agency", "jurisdiction", "person", "topic")

_CASE_INSENSITIVE_MIN_LEN = 6  # shorter Latin aliases ("Apple", "Meta", "US") stay case-sensitive
_TITLE_WEIGHT = 3.0  # a title mention outweighs several body mentions when ranking salience
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_LATIN_SUFFIX = r"(?:s|'s|’s)?(?![A-Za-z0-9])"  # allows the German genitive: "Nvidias", "OpenAIs"
_LOOKAROUND = re.compile(r"\(\?<?[=!](?:[^()\\]|\\.)*\)")
_LITERAL_RUN = re.compile(rf"(?:[A-Za-z0-9{HAN_CLASS} -]|\\.)+")


@dataclass(frozen=True)
class Entity:
    """One catalog entry."""

    name: str
    type: str
    parent: str | None = None
    country: str | None = None
    display: str | None = None
    context: tuple[str, ...] = ()
    context_regex: re.Pattern[str] | None = None
    gloss_skip: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Alias:
    """One spelling of an entity; ``weak`` ones need supporting context."""

    entity: str
    text: str
    lang: str
    is_regex: bool = False
    weak: bool = False


@dataclass
class EntityMatch:
    """A recognised entity with the alias actually seen and how often it occurs."""

    name: str
    type: str
    alias: str
    count: int
    in_title: bool = False
    first_pos: int = 0
    aliases: list[str] = field(default_factory=list)

    @property
    def salience(self) -> float:
        """Title mentions weigh most; ties go to the earlier mention."""
        return self.count + (_TITLE_WEIGHT if self.in_title else 0.0)


@dataclass(frozen=True)
class Span:
    """One non-overlapping alias occurrence (used by the glossary as well)."""

    start: int
    end: int
    alias: Alias


def _is_latin(alias: str) -> bool:
    return not has_han(alias)


class _Trie:
    """Builds a regex that matches any of a set of literals, preferring the longest at each position."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}

    def add(self, word: str) -> None:
        node = self.root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = True

    def pattern(self) -> str:
        return self._node(self.root)

    def _node(self, node: dict[str, Any]) -> str:
        branches = []
        end_here = False
        for char in sorted(node):
            if char == "":
                end_here = True
                continue
            branches.append(re.escape(char) + self._node(node[char]))
        # Children come first so the longest literal wins; the empty leaf alternative allows backtracking.
        leaf = "\x00" if end_here else None
        if not branches:
            return leaf or ""
        body = "|".join(branches)
        if leaf is not None:
            return f"(?:{body}|{leaf})"
        return body if len(branches) == 1 else f"(?:{body})"


def _trie_regex(words: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    """Compile literals into one regex; boundaries depend on whether each end is Latin."""
    latin_start: list[str] = []
    other_start: list[str] = []
    for word in words:
        (latin_start if _ASCII_ALNUM.match(word[0]) else other_start).append(word)
    parts: list[str] = []
    for group, prefix in ((latin_start, "(?<![A-Za-z0-9])"), (other_start, "")):
        if not group:
            continue
        # Latin-ending and Han-ending words need different leaf suffixes: build two tries.
        for ends_latin in (True, False):
            subset = [w for w in group if bool(_ASCII_ALNUM.match(w[-1])) == ends_latin]
            if not subset:
                continue
            trie = _Trie()
            for word in subset:
                trie.add(word)
            body = trie.pattern().replace("\x00", "")
            parts.append(f"{prefix}(?:{body}){_LATIN_SUFFIX if ends_latin else ''}")
    if not parts:
        return None
    return re.compile("|".join(parts), flags)


def _literal_core(pattern: str) -> str:
    """Leading literal of a regex alias: the regex only runs if this substring is present."""
    stripped = _LOOKAROUND.sub("", pattern)
    run = _LITERAL_RUN.match(stripped)
    if run is None:
        return ""
    core = run.group(0).replace("\\", "")
    if len(core) < len(stripped) and stripped[len(run.group(0))] in "?*{":
        core = core[:-1]  # the last literal char is optional
    return core.strip(" .-")


@dataclass
class Catalog:
    """The loaded catalog with its compiled matchers."""

    entities: dict[str, Entity]
    aliases: list[Alias]
    exact: dict[str, Alias]
    folded: dict[str, Alias]
    cs_regex: re.Pattern[str] | None
    ci_regex: re.Pattern[str] | None
    regex_aliases: list[tuple[str, re.Pattern[str], Alias]]

    def spans(self, text: str) -> list[Span]:
        """All alias occurrences, resolved leftmost-longest, before context checks."""
        found: list[Span] = []
        if self.cs_regex is not None:
            for m in self.cs_regex.finditer(text):
                alias = self.exact.get(_strip_suffix(m.group(0), self.exact))
                if alias is not None:
                    found.append(Span(m.start(), m.end(), alias))
        if self.ci_regex is not None:
            for m in self.ci_regex.finditer(text):
                alias = self.folded.get(_strip_suffix(m.group(0).lower(), self.folded))
                if alias is not None:
                    found.append(Span(m.start(), m.end(), alias))
        lowered = text.lower()
        for core, regex, alias in self.regex_aliases:
            if core and core.lower() not in lowered:
                continue
            for m in regex.finditer(text):
                if m.end() > m.start():
                    found.append(Span(m.start(), m.end(), alias))
        found.sort(key=lambda s: (s.start, -(s.end - s.start), s.alias.is_regex))
        resolved: list[Span] = []
        last_end = -1
        for span in found:
            if span.start >= last_end:
                resolved.append(span)
                last_end = span.end
        return resolved


def _strip_suffix(matched: str, table: dict[str, Alias]) -> str:
    if matched in table:
        return matched
    for suffix in ("'s", "’s", "s"):
        if matched.endswith(suffix) and matched[: -len(suffix)] in table:
            return matched[: -len(suffix)]
    return matched


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Parse and compile a catalog file (uncached; use :func:`catalog` in production code)."""
    raw = yaml.safe_load(path.read_text("utf-8"))["entities"]
    entities: dict[str, Entity] = {}
    aliases: list[Alias] = []
    for name, spec in raw.items():
        name = str(name)
        etype = str(spec["type"])
        if etype not in ENTITY_TYPES:
            raise ValueError(f"{name}: unknown entity type {etype!r}")
        entities[name] = Entity(
            name=name,
            type=etype,
            parent=spec.get("parent"),
            country=spec.get("country"),
            display=spec.get("display"),
            context=tuple(_as_list(spec.get("context"))),
            context_regex=_context_regex(_as_list(spec.get("context"))),
            gloss_skip=frozenset(_as_list(spec.get("gloss_skip"))),
        )
        for lang, texts in (spec.get("aliases") or {}).items():
            for text in _as_list(texts):
                is_regex = text.startswith("re:")
                aliases.append(Alias(name, text[3:] if is_regex else text, str(lang), is_regex))
        for text in _as_list(spec.get("weak")):
            aliases.append(Alias(name, text, "en", False, weak=True))
    for entity in entities.values():
        if entity.parent is not None and entity.parent not in entities:
            raise ValueError(f"{entity.name}: unknown parent {entity.parent!r}")

    exact: dict[str, Alias] = {}
    folded: dict[str, Alias] = {}
    regex_aliases: list[tuple[str, re.Pattern[str], Alias]] = []
    for alias in aliases:
        if alias.is_regex:
            regex_aliases.append((_literal_core(alias.text), _compile_regex_alias(alias.text), alias))
        elif _is_latin(alias.text) and len(alias.text) >= _CASE_INSENSITIVE_MIN_LEN:
            folded.setdefault(alias.text.lower(), alias)
        else:
            exact.setdefault(alias.text, alias)
    return Catalog(
        entities=entities,
        aliases=aliases,
        exact=exact,
        folded=folded,
        cs_regex=_trie_regex(exact),
        ci_regex=_trie_regex(folded, re.IGNORECASE),
        regex_aliases=regex_aliases,
    )


def _context_regex(words: list[str]) -> re.Pattern[str] | None:
    """Context words match case-insensitively, Latin ones on word boundaries ("AI" not in "said")."""
    if not words:
        return None
    parts = []
    for word in sorted(words, key=len, reverse=True):
        body = re.escape(word.lower())
        if _ASCII_ALNUM.match(word[0]):
            body = "(?<![a-z0-9])" + body
        if _ASCII_ALNUM.match(word[-1]) and len(word) <= 3:
            body += "(?![a-z0-9])"  # longer context words are stems: "video" covers "videos"
        parts.append(body)
    return re.compile("|".join(parts))


def _compile_regex_alias(pattern: str) -> re.Pattern[str]:
    core = _LOOKAROUND.sub("", pattern)
    left = "(?<![A-Za-z0-9])" if core[:1].isascii() and core[:1].isalnum() else ""
    right = "(?![A-Za-z0-9])" if _is_latin(core) else ""
    return re.compile(f"{left}(?:{pattern}){right}")


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The shipped catalog, parsed and compiled once per process."""
    return load_catalog()


def _context_ok(entity: Entity, cat: Catalog, lowered: str, strong: set[str]) -> bool:
    if entity.name in strong:
        return True
    if entity.parent is not None and entity.parent in strong:
        return True
    if any(child for child in strong if cat.entities[child].parent == entity.name):
        return True
    return entity.context_regex is not None and entity.context_regex.search(lowered) is not None


def find_entities(title: str, text: str = "", lang: str | None = None) -> list[EntityMatch]:
    """Entities mentioned in title and text, most salient first.

    ``lang`` is accepted for interface symmetry; all aliases are tried whatever the language,
    because Chinese articles name Western products in Latin script and vice versa.
    """
    del lang
    cat = catalog()
    title_spans = cat.spans(title) if title else []
    text_spans = cat.spans(text) if text else []
    lowered = f"{title}\n{text}".lower()
    strong = {s.alias.entity for s in (*title_spans, *text_spans) if not s.alias.weak}
    matches: dict[str, EntityMatch] = {}
    offset = len(title) + 1
    for in_title, spans, base in ((True, title_spans, 0), (False, text_spans, offset)):
        for span in spans:
            entity = cat.entities[span.alias.entity]
            if span.alias.weak and not _context_ok(entity, cat, lowered, strong):
                continue
            surface = (title if in_title else text)[span.start : span.end]
            match = matches.get(entity.name)
            if match is None:
                matches[entity.name] = EntityMatch(
                    entity.name, entity.type, surface, 1, in_title, base + span.start, [surface]
                )
            else:
                match.count += 1
                match.in_title = match.in_title or in_title
                if surface not in match.aliases:
                    match.aliases.append(surface)
    return sorted(matches.values(), key=lambda m: (-m.salience, m.first_pos))


def entity_names(title: str, text: str = "", lang: str | None = None) -> list[str]:
    """Canonical names, most salient first, each followed by its not-yet-listed ancestors."""
    cat = catalog()
    names: list[str] = []
    for match in find_entities(title, text, lang):
        chain: str | None = match.name
        while chain is not None and chain not in names:
            names.append(chain)
            chain = cat.entities[chain].parent
    return names


def entity_country(name: str) -> str | None:
    """ISO country code of an org (or of its parent), for grouping alerts by origin."""
    cat = catalog()
    entity = cat.entities.get(name)
    while entity is not None:
        if entity.country:
            return entity.country
        entity = cat.entities.get(entity.parent) if entity.parent else None
    return None


def entity_aliases(name: str, lang: str | None = None) -> list[str]:
    """Every literal spelling of one catalogued entity (of one language, or all), weak ones included
    (a ``re:`` alias contributes its literal core: 可灵 for ``可灵(?![活敏巧])``), for search expansion."""
    cat = catalog()
    out: list[str] = []
    for alias in cat.aliases:
        if alias.entity != name or (lang is not None and alias.lang != lang):
            continue
        text = _literal_core(alias.text) if alias.is_regex else alias.text
        if len(text) >= 2 and text not in out:
            out.append(text)
    return out
