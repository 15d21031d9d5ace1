"""The analysts' query syntax: parsed here, never handed to Elasticsearch's `query_string`.

Syntax (case of the operators matters, as in most search engines):

    qwen open weights            bare words: up to three must all match, longer queries three quarters
    "export controls"            phrase (unbalanced quote: the phrase runs to the end of the input)
    qwen AND ban / qwen OR kling explicit operators; AND binds tighter than OR
    NOT ban / -ban               exclusion
    (qwen OR kling) AND ban      grouping (missing closing parentheses are added)
    lang:zh event:restriction    field filters, values exact (case-insensitive); quote values with
    entity:"Alibaba Cloud"       spaces; fields: lang, event, entity, source, country, story,
    paywall:false since:7d       paywall, since/until (a date, or a duration like 24h/7d/2w)

Chinese words without spaces (出口管制) are matched as phrases: the standard analyzer splits them into
characters, and a phrase keeps those characters together.

Nothing the user types can reach Elasticsearch as syntax: words and phrases become `multi_match`
queries (analysed text), field values become `term` queries on keyword fields, and unknown fields,
wildcards (`*:*`) or oversized input turn into warnings, not errors. Input is capped in length,
number of clauses and nesting depth. The module is pure (no I/O, no client): alert rules evaluate
the same syntax with `parse` + `to_es`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from newsradar.dates import parse_since
from newsradar.text import CJK

MAX_CHARS = 2000
# Chinese is matched character by character on the local node: each character is a term, so a long
# Chinese query is a query of that many clauses (and phrases of that many positions).
MAX_CJK_CHARS = 120
MAX_CLAUSES = 64
MAX_DEPTH = 12
TEXT_FIELDS = ["title^3", "title_en^3", "lead^2", "lead_en^2", "text", "text_en"]
MOST_WORDS = "3<75%"

# user-facing name -> index field
FIELDS: dict[str, str] = {
    "lang": "lang",
    "language": "lang",
    "event": "event_types",
    "entity": "entities",
    "source": "source",
    "outlet": "source",
    "country": "country",
    "story": "story_id",
    "paywall": "paywall",
    "since": "since",
    "until": "until",
}
_WORDLIKE = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class Words:
    """Bare words typed next to each other, matched together (most of them must occur)."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class Phrase:
    text: str
    quoted: bool = field(default=True, compare=False)  # False: a bare Chinese word, not a typed phrase


@dataclass(frozen=True)
class Field:
    field: str  # index field name (see FIELDS)
    value: str | bool


@dataclass(frozen=True)
class Range:
    field: str
    gte: str | None = None
    lt: str | None = None


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Union[Words, Phrase, Field, Range, Not, And, Or]  # noqa: UP007  (recursive alias)


@dataclass
class ParsedQuery:
    text: str
    root: Node | None
    warnings: list[str] = field(default_factory=list)

    def embedding_text(self) -> str:
        """The words and phrases the user is looking for (not the excluded ones): what kNN embeds."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            if isinstance(node, Words):
                parts.append(" ".join(node.words))
            elif isinstance(node, Phrase):
                parts.append(node.text)
            elif isinstance(node, And | Or):
                for child in node.children:
                    walk(child)

        if self.root is not None:
            walk(self.root)
        return " ".join(parts)

    def constraints(self) -> list[dict[str, Any]]:
        """Clauses every hit must satisfy (field filters and exclusions of the top-level
        conjunction): what a kNN leg applies as its filter without changing the query's meaning."""
        items = self.root.children if isinstance(self.root, And) else (self.root,) if self.root else ()
        out: list[dict[str, Any]] = []
        for node in items:
            if isinstance(node, Not):
                out.append({"bool": {"must_not": [_to_es(node.child, TEXT_FIELDS)]}})
            elif _is_filter(node):
                out.append(_to_es(node, TEXT_FIELDS))
        return out

    def has_text(self) -> bool:
        """Whether anything is matched as text (else the query is filters only)."""
        return bool(self.embedding_text())

    def field_values(self, name: str) -> list[str]:
        """Positive values of one index field in the top-level conjunction (e.g. to prefill a rule)."""
        items = self.root.children if isinstance(self.root, And) else (self.root,) if self.root else ()
        return [str(n.value) for n in items if isinstance(n, Field) and n.field == name]

    def __str__(self) -> str:
        return _show(self.root) if self.root is not None else ""


def _is_filter(node: Node) -> bool:
    if isinstance(node, Field | Range):
        return True
    if isinstance(node, Not):
        return _is_filter(node.child)
    if isinstance(node, And | Or):
        return all(_is_filter(c) for c in node.children)
    return False


def _show(node: Node) -> str:
    if isinstance(node, Words):
        return " ".join(node.words)
    if isinstance(node, Phrase):
        return '"' + node.text + '"'
    if isinstance(node, Field):
        value = str(node.value).lower() if isinstance(node.value, bool) else node.value
        name = next(k for k, v in FIELDS.items() if v == node.field)
        return f'{name}:"{value}"' if " " in value else f"{name}:{value}"
    if isinstance(node, Range):
        return " ".join(f"{k}:{v}" for k, v in (("since", node.gte), ("until", node.lt)) if v)
    if isinstance(node, Not):
        return f"NOT {_show(node.child)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(_show(c) for c in node.children) + ")"


# --- dates -------------------------------------------------------------------------------------


# --- tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # word, phrase, field, and, or, not, open, close
    text: str = ""
    name: str = ""


def _tokens(text: str, warnings: list[str]) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(text)

    def read_phrase(start: int) -> tuple[str, int]:
        end = text.find('"', start)
        if end < 0:
            warnings.append("unbalanced quote: the phrase runs to the end of the query")
            return text[start:], n
        return text[start:end], end + 1

    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            out.append(_Tok("open"))
            i += 1
        elif ch == ")":
            out.append(_Tok("close"))
            i += 1
        elif ch == '"':
            phrase, i = read_phrase(i + 1)
            out.append(_Tok("phrase", phrase))
        elif (
            ch == "-"
            and i + 1 < n
            and not text[i + 1].isspace()
            and (not out or text[i - 1].isspace() or text[i - 1] == "(")
        ):
            out.append(_Tok("not"))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            word = text[i:j]
            name, sep, value = word.partition(":")
            if sep and name.lower() in FIELDS:
                if not value and j < n and text[j] == '"':
                    value, j = read_phrase(j + 1)
                out.append(_Tok("field", value.strip(), FIELDS[name.lower()]))
            elif word in ("AND", "&&"):
                out.append(_Tok("and"))
            elif word in ("OR", "||"):
                out.append(_Tok("or"))
            elif word == "NOT":
                out.append(_Tok("not"))
            else:
                if sep and _WORDLIKE.search(name) and name.isidentifier():
                    warnings.append(f"unknown field {name!r} searched as text (fields: {', '.join(FIELDS)})")
                out.append(_Tok("word", word))
            i = j
    return out


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Tok], warnings: list[str]) -> None:
        self.toks = tokens
        self.pos = 0
        self.warnings = warnings
        self.clauses = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node | None:
        parts: list[Node] = []
        while self.peek() is not None:
            node = self.parse_or(0)
            if node is not None:
                parts.append(node)
            if self.peek() is not None and self.peek().kind == "close":  # type: ignore[union-attr]
                self.take()
                self.warnings.append("unbalanced ')' ignored")
        return _combine(And, parts)

    def parse_or(self, depth: int) -> Node | None:
        parts = [self.parse_and(depth)]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            parts.append(self.parse_and(depth))
        return _combine(Or, [p for p in parts if p is not None])

    def parse_and(self, depth: int) -> Node | None:
        parts: list[Node] = []
        explicit = False
        while (tok := self.peek()) is not None and tok.kind not in ("or", "close"):
            if tok.kind == "and":
                self.take()
                explicit = True
                continue
            node = self.parse_unary(depth)
            if node is None:
                continue
            if isinstance(node, Words) and parts and isinstance(parts[-1], Words) and not explicit:
                parts[-1] = Words(parts[-1].words + node.words)
            else:
                parts.append(node)
            explicit = False
        return _combine(And, parts)

    def parse_unary(self, depth: int) -> Node | None:
        negations = 0
        while (tok := self.peek()) is not None and tok.kind == "not":  # a loop: "------x" must not recurse
            self.take()
            negations += 1
        if negations and ((tok := self.peek()) is None or tok.kind in ("or", "and", "close")):
            self.warnings.append("NOT without anything to exclude ignored")
            return None
        child = self.parse_primary(depth)
        if child is None or negations % 2 == 0:
            return child
        return Not(child)

    def parse_primary(self, depth: int) -> Node | None:
        if self.peek() is None:
            return None
        tok = self.take()
        if tok.kind == "open":
            if depth >= MAX_DEPTH:
                self.warnings.append(f"parentheses nested deeper than {MAX_DEPTH} flattened")
                return None
            inner = self.parse_or(depth + 1)
            if (close := self.peek()) is not None and close.kind == "close":
                self.take()
            else:
                self.warnings.append("missing ')' added at the end")
            return inner
        if not self._count():
            return None
        if tok.kind == "phrase":
            text = " ".join(tok.text.split())
            if not _WORDLIKE.search(text):
                self.warnings.append("empty phrase ignored")
                return None
            return Phrase(text)
        if tok.kind == "field":
            return self._field(tok)
        if tok.kind in ("and", "or", "not"):
            return None
        word = tok.text
        if not _WORDLIKE.search(word):
            self.warnings.append(f"{word!r} has no letters or digits and was ignored (no wildcards)")
            return None
        return Phrase(word, quoted=False) if CJK.search(word) else Words((word,))

    def _count(self) -> bool:
        self.clauses += 1
        if self.clauses == MAX_CLAUSES + 1:
            self.warnings.append(f"more than {MAX_CLAUSES} clauses: the rest was ignored")
        return self.clauses <= MAX_CLAUSES

    def _field(self, tok: _Tok) -> Node | None:
        name, value = tok.name, tok.text
        if not value:
            self.warnings.append(f"{name}: without a value ignored")
            return None
        if name in ("since", "until"):
            try:
                when = parse_since(value).isoformat()
            except ValueError as error:
                self.warnings.append(f"{name}: {error}")
                return None
            return Range("published_at", gte=when) if name == "since" else Range("published_at", lt=when)
        if name == "paywall":
            flag = value.lower()
            if flag not in ("true", "false", "yes", "no"):
                self.warnings.append(f"paywall:{value} ignored (use paywall:true or paywall:false)")
                return None
            return Field("paywall", flag in ("true", "yes"))
        if name == "lang":
            value = value.lower()
        elif name == "country":
            value = value.upper()
        return Field(name, value)


def _combine(kind: type[And] | type[Or], parts: list[Node]) -> Node | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    flat: list[Node] = []
    for part in parts:
        flat.extend(part.children if isinstance(part, kind) else (part,))
    return kind(tuple(flat))


def parse(text: str) -> ParsedQuery:
    """Parse the analysts' syntax; never raises on user input (problems become `warnings`)."""
    warnings: list[str] = []
    original = text
    if len(text) > MAX_CHARS:
        warnings.append(f"query longer than {MAX_CHARS} characters was cut")
        text = text[:MAX_CHARS]
    cjk = [match.start() for match in CJK.finditer(text)]
    if len(cjk) > MAX_CJK_CHARS:
        warnings.append(f"query with more than {MAX_CJK_CHARS} Chinese or Japanese characters was cut")
        text = text[: cjk[MAX_CJK_CHARS]]
    parser = _Parser(_tokens(text, warnings), warnings)
    root = parser.parse()
    return ParsedQuery(original, root, warnings)


# --- to Elasticsearch --------------------------------------------------------------------------


#: Turns the text of a leaf (bare words, or a bare Chinese word) into a query of its own, or None to
#: keep the literal reading (see ``index.understand``: expansion across languages).
Expander = Callable[[str], "dict[str, Any] | None"]


def _to_es(node: Node, fields: list[str], expand: Expander | None = None) -> dict[str, Any]:
    if expand is not None and (isinstance(node, Words) or (isinstance(node, Phrase) and not node.quoted)):
        expanded = expand(" ".join(node.words) if isinstance(node, Words) else node.text)
        if expanded is not None:
            return expanded
    if isinstance(node, Words):
        return {
            "multi_match": {
                "query": " ".join(node.words),
                "fields": fields,
                "type": "cross_fields",
                "operator": "or",
                "minimum_should_match": MOST_WORDS,
            }
        }
    if isinstance(node, Phrase):
        return {"multi_match": {"query": node.text, "fields": fields, "type": "phrase"}}
    if isinstance(node, Field):
        if isinstance(node.value, bool):
            return {"term": {node.field: node.value}}
        return {"term": {node.field: {"value": node.value, "case_insensitive": True}}}
    if isinstance(node, Range):
        bounds = {k: v for k, v in (("gte", node.gte), ("lt", node.lt)) if v}
        return {"range": {node.field: bounds}}
    if isinstance(node, Not):
        return {"bool": {"must_not": [_to_es(node.child, fields)]}}
    if isinstance(node, Or):
        return {
            "bool": {"should": [_to_es(c, fields, expand) for c in node.children], "minimum_should_match": 1}
        }
    must: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    children = _merge_bare(node.children) if expand is not None else node.children
    for child in children:
        if isinstance(child, Not):
            must_not.append(_to_es(child.child, fields))
        elif _is_filter(child):
            filters.append(_to_es(child, fields))
        else:
            must.append(_to_es(child, fields, expand))
    clause: dict[str, Any] = {"filter": filters} if filters else {}
    if must:
        clause["must"] = must
    if must_not:
        clause["must_not"] = must_not
    return {"bool": clause}


def _bare(node: Node) -> bool:
    return isinstance(node, Words) or (isinstance(node, Phrase) and not node.quoted)


def _merge_bare(children: tuple[Node, ...]) -> tuple[Node, ...]:
    """Neighbouring bare words of a conjunction as one text ("美国 实体清单 中国企业" is one request
    of four units, not three separate must-match leaves), so expansion weighs them together."""
    out: list[Node] = []
    for child in children:
        if _bare(child) and out and _bare(out[-1]):
            previous = out[-1]
            before = previous.words if isinstance(previous, Words) else (previous.text,)  # type: ignore[union-attr]
            now = child.words if isinstance(child, Words) else (child.text,)  # type: ignore[union-attr]
            out[-1] = Words(before + now)
        else:
            out.append(child)
    return tuple(out)


def to_es(
    parsed: ParsedQuery, fields: list[str] | None = None, expand: Expander | None = None
) -> dict[str, Any]:
    """Elasticsearch query DSL for a parsed query; `fields` are the text fields words and phrases
    search (default `TEXT_FIELDS`; the search adds language sub-fields where the node has them).
    `expand` reads the text of positive leaves (the search passes cross-language expansion; alert
    rules keep the literal reading); exclusions are never expanded."""
    if parsed.root is None:
        return {"match_all": {}}
    query = _to_es(parsed.root, fields or TEXT_FIELDS, expand)
    if isinstance(parsed.root, Not):  # a lone exclusion: everything except
        query["bool"]["must"] = [{"match_all": {}}]
    return query
