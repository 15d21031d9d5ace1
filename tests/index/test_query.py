"""The analysts' query syntax: parse and translate, including hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from index.query import MAX_CHARS, MAX_CLAUSES, And, Field, Not, Or, Phrase, Range, Words, parse, to_es
from newsradar.dates import parse_since


def _walk(query: object) -> list[dict[str, object]]:
    """Every dict inside an ES query, to look for forbidden query types."""
    out: list[dict[str, object]] = []
    if isinstance(query, dict):
        out.append(query)
        for value in query.values():
            out.extend(_walk(value))
    elif isinstance(query, list):
        for value in query:
            out.extend(_walk(value))
    return out


def _keys(query: dict[str, object]) -> set[str]:
    return {key for node in _walk(query) for key in node}


def test_bare_words_group_and_phrase() -> None:
    parsed = parse('qwen open "export controls"')
    assert parsed.root == And((Words(("qwen", "open")), Phrase("export controls")))
    assert parsed.embedding_text() == "qwen open export controls"
    assert parsed.warnings == []


def test_operators_precedence_and_grouping() -> None:
    parsed = parse("qwen OR kling AND ban")
    assert parsed.root == Or((Words(("qwen",)), And((Words(("kling",)), Words(("ban",))))))
    grouped = parse("(qwen OR kling) AND NOT ban")
    assert grouped.root == And((Or((Words(("qwen",)), Words(("kling",)))), Not(Words(("ban",)))))
    assert parse("qwen -ban").root == And((Words(("qwen",)), Not(Words(("ban",)))))
    # explicit AND keeps words apart (each must match), juxtaposition groups them
    assert parse("qwen AND ban").root == And((Words(("qwen",)), Words(("ban",))))
    # a hyphen inside a word is part of it
    assert parse("GPT-4o").root == Words(("GPT-4o",))


def test_field_filters() -> None:
    parsed = parse('lang:ZH event:restriction entity:"Alibaba Cloud" country:de source:wire-en paywall:false')
    assert parsed.root == And(
        (
            Field("lang", "zh"),
            Field("event_types", "restriction"),
            Field("entities", "Alibaba Cloud"),
            Field("country", "DE"),
            Field("source", "wire-en"),
            Field("paywall", False),
        )
    )
    assert parsed.field_values("entities") == ["Alibaba Cloud"]
    query = to_es(parsed)
    filters = query["bool"]["filter"]
    assert {"term": {"lang": {"value": "zh", "case_insensitive": True}}} in filters
    assert {"term": {"paywall": False}} in filters
    assert "must" not in query["bool"]  # filters only: nothing to score
    assert not parsed.has_text()


def test_since_until_and_durations() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a date"):
        parse_since("yesterday")
    parsed = parse("qwen since:2026-11-01 until:2026-11-20")
    assert isinstance(parsed.root, And)
    ranges = [n for n in parsed.root.children if isinstance(n, Range)]
    assert ranges[0].gte and ranges[0].gte.startswith("2026-11-01")
    assert ranges[1].lt and ranges[1].lt.startswith("2026-11-20")
    bad = parse("qwen since:someday")
    assert bad.root == Words(("qwen",)) and any("since" in w for w in bad.warnings)


def test_chinese_words_become_phrases() -> None:
    parsed = parse("出口管制 英伟达")
    assert parsed.root == And((Phrase("出口管制"), Phrase("英伟达")))
    clause = to_es(parsed)["bool"]["must"][0]["multi_match"]
    assert clause["type"] == "phrase" and clause["query"] == "出口管制"


def test_to_es_structure() -> None:
    query = to_es(parse("(qwen OR kling) lang:zh NOT ban"))
    assert query["bool"]["filter"] == [{"term": {"lang": {"value": "zh", "case_insensitive": True}}}]
    assert query["bool"]["must"][0]["bool"]["minimum_should_match"] == 1
    assert query["bool"]["must_not"][0]["multi_match"]["query"] == "ban"
    lone = to_es(parse("NOT ban"))
    assert lone["bool"]["must"] == [{"match_all": {}}]
    assert to_es(parse("")) == {"match_all": {}}


def test_constraints_for_knn_keep_filters_and_exclusions() -> None:
    parsed = parse("export controls lang:zh -kling")
    constraints = parsed.constraints()
    assert {"term": {"lang": {"value": "zh", "case_insensitive": True}}} in constraints
    assert any("must_not" in c.get("bool", {}) for c in constraints)
    assert parsed.embedding_text() == "export controls"


@pytest.mark.parametrize(
    "text",
    [
        '"unbalanced quote',
        "*:*",
        "((((qwen",
        "qwen))))",
        "AND OR NOT",
        "title:qwen _id:1 foo:bar",
        '{"query": {"match_all": {}}}',
        "lang:",
        "field:value^10~2 qwen* ?wen",
        "\x00\x01 qwen \u202e",
        "<script>alert(1)</script>",
    ],
)
def test_abuse_never_raises_and_never_reaches_query_string(text: str) -> None:
    parsed = parse(text)
    query = to_es(parsed)
    keys = _keys(query)
    assert not keys & {"query_string", "wildcard", "regexp", "script", "fuzzy", "prefix", "ids"}
    json.dumps(query)  # plain JSON, nothing else


def test_star_colon_star_is_not_match_everything_syntax() -> None:
    parsed = parse("*:*")
    assert parsed.root is None
    assert parsed.warnings and "no letters" in parsed.warnings[0]


def test_unknown_fields_are_text_with_a_warning() -> None:
    parsed = parse("title:qwen")
    assert parsed.root == Words(("title:qwen",))
    assert any("unknown field 'title'" in w for w in parsed.warnings)


def test_unbalanced_quote_and_parentheses_are_repaired() -> None:
    quote = parse('qwen "open weights')
    assert quote.root == And((Words(("qwen",)), Phrase("open weights")))
    assert any("quote" in w for w in quote.warnings)
    parens = parse("(qwen OR kling")
    assert parens.root == Or((Words(("qwen",)), Words(("kling",))))
    assert any("missing ')'" in w for w in parens.warnings)
    stray = parse("qwen) kling")
    assert stray.root == And((Words(("qwen",)), Words(("kling",))))
    assert any("unbalanced ')'" in w for w in stray.warnings)


def test_huge_input_is_capped() -> None:
    huge = " OR ".join(f"word{i}" for i in range(5000))
    parsed = parse(huge)
    assert isinstance(parsed.root, Or)
    assert len(parsed.root.children) <= MAX_CLAUSES
    assert any(str(MAX_CHARS) in w for w in parsed.warnings)
    deep = parse("(" * 500 + "qwen" + ")" * 500)
    assert deep.root == Words(("qwen",))
    assert any("nested deeper" in w for w in deep.warnings)
    assert len(json.dumps(to_es(parsed))) < 200_000


def test_str_shows_the_understood_query() -> None:
    assert str(parse('qwen lang:zh entity:"Alibaba Cloud" -ban')) == (
        '(qwen AND lang:zh AND entity:"Alibaba Cloud" AND NOT ban)'
    )


def test_long_negation_chains_do_not_recurse() -> None:
    parsed = parse("NOT " * 499 + "x")
    assert parsed.root == Not(Words(("x",)))
    dashes = parse("-" * 1999 + "x")  # only the first dash negates; the rest is a word
    assert isinstance(dashes.root, Not)
    assert parse("NOT NOT qwen").root == Words(("qwen",))
