"""Duplicates and stories with fresh in-memory state: the algorithm on fixtures written for it,
the sample site's story labels, bad records, and the `newsradar dedupe` command."""

from __future__ import annotations

import itertools
import json
import random
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from dedupekit import FIXTURES, load
from typer.testing import CliRunner

from enrich.dedupe import (
    MAX_TEXT_CHARS,
    ArticleInput,
    CandidateQuery,
    Candidates,
    MemoryState,
    Params,
    Record,
    StoryAssigner,
    content_hash,
    decide_all,
    fill_vectors,
    fingerprint,
    shingles,
    to_fingerprint,
    tokens,
)
from enrich.embed import get_embedder
from enrich.numbers import extract_numbers

SAMPLE_SITE = Path(__file__).resolve().parents[2] / "stack" / "sample_site"
# Measured on the sample site (25 articles, 9 stories): pairwise precision 1.00, recall 1.00.
SAMPLE_FLOOR_PRECISION = 0.9
SAMPLE_FLOOR_RECALL = 0.9


def by_id(records: list[Record]) -> dict[str, Record]:
    return {r.article_id: r for r in records}


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[ArticleInput]]:
    return {p.name: load(p.name) for p in sorted(FIXTURES.glob("*.jsonl"))}


def everything(corpus: dict[str, list[ArticleInput]]) -> list[ArticleInput]:
    return [item for items in corpus.values() for item in items]


# ------------------------------------------------------------------------------------------ features


def test_numbers_agree_across_languages() -> None:
    en = extract_numbers("Qwen 3.5 has 72 billion parameters and 40% lower cost; 1,200 firms use it", "en")
    de = extract_numbers(
        "Qwen 3.5 hat 72 Milliarden Parameter und 40 Prozent geringere Kosten; 1.200 Firmen", "de"
    )
    zh = extract_numbers("通义千问Qwen 3.5参数达720亿，成本降低四成，1200家企业使用", "zh")
    for value in ("7.2e+10", "40%", "1200", "3.5"):
        assert value in en and value in de and value in zh, value
    assert "7.2e+10" in extract_numbers("七百二十亿参数", "zh")
    assert "3.5e+05" in extract_numbers("累计35万用户", "zh")
    # German "Billion" is 10^12, and German decimals use a comma.
    assert extract_numbers("1 Billion Euro und 2,5 Prozent", "de") == {"1e+12", "2.5%"}
    # Years and small counts are not evidence.
    assert extract_numbers("In 2026 three firms, 5 products", "en") == set()


def test_jieba_keeps_catalog_names_whole() -> None:
    words = tokens("阿里巴巴发布通义千问新模型，零一万物和可灵紧随其后", "zh")
    for name in ("通义千问", "零一万物", "可灵"):
        assert name in words


def test_content_hash_ignores_layout_but_not_words() -> None:
    body = "Moonshot AI launched Kimi K3 on Tuesday. " * 8
    assert content_hash("A", body) == content_hash("B", body.upper().replace(". ", ".\n\n"))
    assert content_hash("A", body) != content_hash("A", body.replace("Tuesday", "Monday"))
    assert content_hash("Short", "") is None  # too little to identify a copy


def test_shingles_language_aware() -> None:
    assert "kimi k3" in shingles("Moonshot launches Kimi K3", "en")
    assert any("混元" in s for s in shingles("腾讯开源混元大模型", "zh"))


# ------------------------------------------------------------------------------------------ decisions


def test_wire_copies_in_english(corpus: dict[str, list[ArticleInput]]) -> None:
    out = by_id(decide_all(corpus["wire_en.jsonl"]))
    first = out["en-wire-1"]
    assert first.duplicate_of is None and first.match == "new"
    assert out["en-wire-2"].match == "near" and out["en-wire-2"].duplicate_of == "en-wire-1"
    assert out["en-wire-3"].match == "exact" and out["en-wire-3"].duplicate_of == "en-wire-1"  # URL
    assert out["en-wire-4"].match == "exact" and out["en-wire-4"].duplicate_of == "en-wire-1"  # content
    assert out["en-wire-2"].score >= 0.5 and out["en-wire-3"].score == 1.0
    assert {r.story_id for r in out.values()} == {first.story_id}


def test_wire_copies_in_german_and_chinese(corpus: dict[str, list[ArticleInput]]) -> None:
    de = by_id(decide_all(corpus["wire_de.jsonl"]))
    assert de["de-wire-2"].duplicate_of == "de-wire-1" and de["de-wire-2"].match == "near"
    zh = by_id(decide_all(corpus["zh_rewrite.jsonl"]))
    assert zh["zh-wire-2"].duplicate_of == "zh-wire-1" and zh["zh-wire-2"].match == "near"
    assert zh["zh-wire-1"].story_id == zh["zh-wire-2"].story_id


def test_cross_language_triple_is_one_story_without_duplicates(corpus: dict[str, list[ArticleInput]]) -> None:
    out = by_id(decide_all(corpus["cross_language.jsonl"]))
    assert len({r.story_id for r in out.values()}) == 1
    assert all(r.duplicate_of is None for r in out.values())
    assert out["x-de"].match == "story" and out["x-zh"].match == "story"
    assert min(out["x-de"].score, out["x-zh"].score) >= StoryAssigner(MemoryState()).model.join_threshold


GROUPS = {
    "wire_en": ["en-wire-1", "en-wire-2", "en-wire-3", "en-wire-4"],
    "wire_de": ["de-wire-1", "de-wire-2"],
    "zh": ["zh-wire-1", "zh-wire-2"],
    "cross": ["x-en", "x-de", "x-zh"],
    "nv1": ["neg-nv-1"],
    "nv2": ["neg-nv-2"],
    "qwen": ["neg-qwen"],
    "deepseek": ["neg-deepseek"],
}


def assert_fixture_stories(out: dict[str, Record]) -> None:
    """The en/de/zh triple is one story, every wire group one story, the hard negatives apart."""
    story_of_group = {}
    for name, ids in GROUPS.items():
        stories = {out[i].story_id for i in ids}
        assert len(stories) == 1, (name, stories)
        story_of_group[name] = stories.pop()
    assert len(set(story_of_group.values())) == len(GROUPS), story_of_group


@pytest.mark.parametrize("seed", range(5))
def test_fixture_stories_in_any_order_and_without_dates(
    corpus: dict[str, list[ArticleInput]], seed: int
) -> None:
    """As a file without dates is processed: the order is the id order, here shuffled by renaming."""
    items = everything(corpus)
    rng = random.Random(seed)
    salt = {i.id: f"{rng.random():.6f}-{i.id}" for i in items}
    undated = [replace(i, id=salt[i.id], published=None) for i in items]
    out = {r.article_id.split("-", 1)[1]: r for r in decide_all(undated)}
    assert_fixture_stories(out)


def test_all_fixtures_together_keep_stories_apart(corpus: dict[str, list[ArticleInput]]) -> None:
    state = MemoryState()
    out = by_id(StoryAssigner(state).assign_batch(everything(corpus)))
    assert_fixture_stories(out)
    assert len(state.stories) == len(GROUPS)


def test_one_article_at_a_time_gives_the_same_stories(corpus: dict[str, list[ArticleInput]]) -> None:
    """Stored candidates (kNN) and batch neighbours are the same evidence: batch size changes nothing."""
    items = sorted(everything(corpus), key=lambda i: (i.published is None, i.published, i.id))
    state = MemoryState()
    assigner = StoryAssigner(state)
    out = {i.id: assigner.assign(i) for i in items}
    assert_fixture_stories(out)


def test_same_topic_in_the_same_week_with_other_numbers_is_another_story(
    corpus: dict[str, list[ArticleInput]],
) -> None:
    """Two Nvidia export-control stories: moved two days apart they are inside the time window,
    but name different chips and quote different charges."""
    nv1, nv2 = corpus["hard_negatives.jsonl"][:2]
    assert nv1.published is not None
    near = replace(nv2, published=nv1.published + timedelta(days=2))
    out = decide_all([nv1, near])
    assert out[0].story_id != out[1].story_id


def test_time_window_separates_otherwise_matching_reports(corpus: dict[str, list[ArticleInput]]) -> None:
    en, de, _ = corpus["cross_language.jsonl"]
    assert en.published is not None
    late = replace(de, published=en.published + timedelta(days=30))
    assert decide_all([en, late])[0].story_id != decide_all([en, late])[1].story_id
    assert decide_all([en, de])[0].story_id == decide_all([en, de])[1].story_id


def test_input_order_does_not_change_the_answer(corpus: dict[str, list[ArticleInput]]) -> None:
    items = everything(corpus)
    expected = {r.article_id: (r.story_id, r.duplicate_of) for r in decide_all(items)}
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    again = decide_all(shuffled)
    assert [r.article_id for r in again] == [i.id for i in shuffled]  # input order kept
    assert {r.article_id: (r.story_id, r.duplicate_of) for r in again} == expected


def test_threshold_controls_near_duplicates(corpus: dict[str, list[ArticleInput]]) -> None:
    strict = by_id(decide_all(corpus["wire_de.jsonl"], params=Params(threshold=0.99)))
    assert strict["de-wire-2"].duplicate_of is None  # no longer a copy ...
    assert strict["de-wire-2"].story_id == strict["de-wire-1"].story_id  # ... but still the same story


def test_rerun_on_the_same_state_returns_the_stored_answer(corpus: dict[str, list[ArticleInput]]) -> None:
    state = MemoryState()
    items = corpus["cross_language.jsonl"] + corpus["wire_en.jsonl"]
    first = [(r.story_id, r.duplicate_of, r.match) for r in StoryAssigner(state).assign_batch(items)]
    stories_before = {k: list(v.article_ids) for k, v in state.stories.items()}
    second = [(r.story_id, r.duplicate_of, r.match) for r in StoryAssigner(state).assign_batch(items)]
    assert first == second
    assert {k: v.article_ids for k, v in state.stories.items()} == stories_before


def test_story_documents_keep_members_and_centroid_not_facts(corpus: dict[str, list[ArticleInput]]) -> None:
    """Size, outlets and languages are index.story_facts, counted from the articles."""
    state = MemoryState()
    items = corpus["cross_language.jsonl"]
    records = StoryAssigner(state).assign_batch(items)
    story = state.story(records[0].story_id or "")
    assert story is not None and story.merged_into is None
    assert story.article_ids == ["x-de", "x-en", "x-zh"]
    assert story.vectors == 3 and story.vector_sum is not None
    assert np.allclose(story.vector_sum, sum(i.vector for i in items), atol=1e-5)  # type: ignore[misc]
    assert not hasattr(story, "outlets") and not hasattr(story, "first_article_id")


class CountingState(MemoryState):
    """Counts the state calls: the kNN read, the other read and one write per batch, whatever its size."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def neighbours(self, batch, query):  # type: ignore[no-untyped-def]
        self.calls.append("neighbours")
        return super().neighbours(batch, query)

    def candidates(self, batch: list[Record], query: CandidateQuery, neighbours) -> Candidates:  # type: ignore[no-untyped-def, override]
        self.calls.append("candidates")
        return super().candidates(batch, query, neighbours)

    def commit(self, records, merges, completed=()):  # type: ignore[no-untyped-def]
        self.calls.append("commit")
        return super().commit(records, merges, completed)


def test_one_read_and_one_write_per_batch(corpus: dict[str, list[ArticleInput]]) -> None:
    state = CountingState()
    StoryAssigner(state).assign_batch(everything(corpus))
    assert state.calls == ["neighbours", "candidates", "commit"]


def test_article_without_vector_can_still_be_a_duplicate() -> None:
    a = ArticleInput("a", "Title one here", "Some body text that is long enough to hash. " * 6, lang="en")
    b = ArticleInput("b", "Other title", a.text, lang="en")
    out = decide_all([a, b])
    assert out[1].duplicate_of == "a" and out[1].match == "exact"
    assert out[0].vector is None and out[0].match == "new"


# ------------------------------------------------------------------------------------------ bad records


def test_records_without_text_date_or_with_a_huge_body_are_assigned(
    corpus: dict[str, list[ArticleInput]],
) -> None:
    en, de, zh = corpus["cross_language.jsonl"]
    title_only = replace(de, id="title-only", text="", lead="")
    undated = replace(zh, id="undated", published=None)
    huge = replace(en, id="huge", text=en.text + " " + "Filler words of a live blog go on and on. " * 50_000)
    assert len(huge.text) > 2_000_000
    started = time.perf_counter()
    record = fingerprint(huge)
    assert time.perf_counter() - started < 2.0  # the body is clipped before shingles and entities
    assert record.title == en.title and len(huge.text[:MAX_TEXT_CHARS]) == MAX_TEXT_CHARS
    out = by_id(decide_all([en, title_only, undated, huge]))
    assert all(r.story_id and r.match in ("exact", "near", "story", "new") for r in out.values())
    assert out["title-only"].story_id == out["undated"].story_id == out["x-en"].story_id
    assert out["huge"].story_id == out["x-en"].story_id


def test_no_vector_no_text_still_decides() -> None:
    empty = ArticleInput("e", "", "", lang="other")
    nan = ArticleInput("n", "Something", "", lang="en", vector=np.full(384, np.nan, dtype=np.float32))
    out = decide_all([empty, nan])
    assert [r.match for r in out] == ["new", "new"] and out[0].story_id != out[1].story_id
    assert out[1].vector is None  # a NaN vector is no vector


# ------------------------------------------------------------------------------------------ sample site


def sample_site_items() -> tuple[list[dict[str, object]], list[ArticleInput]]:
    from crawlers.extract import extract

    manifest = json.loads((SAMPLE_SITE / "MANIFEST.json").read_text("utf-8"))
    items = []
    for entry in manifest:
        url = "http://sample.test" + entry["path"]
        raw = (
            (SAMPLE_SITE / entry["path"].lstrip("/"))
            .read_bytes()
            .replace(b"{{BASE_URL}}", b"http://sample.test")
        )
        page = extract(raw, url)
        items.append(
            ArticleInput(
                entry["path"],
                page.title,
                page.text,
                page.lead,
                url=url,
                lang=entry["lang"],
                source=entry["outlet"],
                published=page.published,
            )
        )
    embedder = get_embedder()
    fill_vectors(items, embedder.passages, embedder.name)
    return manifest, items


def test_sample_site_story_grouping_matches_the_manifest() -> None:
    manifest, items = sample_site_items()
    out = decide_all(items)
    tp = fp = fn = 0
    for (a, ra), (b, rb) in itertools.combinations(zip(manifest, out, strict=True), 2):
        truth, decided = a["story"] == b["story"], ra.story_id == rb.story_id
        tp += truth and decided
        fp += decided and not truth
        fn += truth and not decided
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    print(f"sample site: pairwise precision {precision:.2f}, recall {recall:.2f} ({tp} true pairs found)")
    assert precision >= SAMPLE_FLOOR_PRECISION and recall >= SAMPLE_FLOOR_RECALL
    for entry, record in zip(manifest, out, strict=True):
        if entry["near_duplicate_of"]:
            assert record.duplicate_of == entry["near_duplicate_of"], entry["path"]
        else:
            assert record.duplicate_of is None, entry["path"]


# ------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli() -> typer.Typer:
    from commands.dedupe import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Test app: one group so the command keeps its name."""

    return app


def run_cli(cli: typer.Typer, *args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(cli, ["dedupe", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def test_cli_prints_one_line_per_article_in_input_order(cli: typer.Typer, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (FIXTURES / "wire_en.jsonl").read_text("utf-8").splitlines()]
    rows = rows[::-1]  # the copies come first in the file; decisions still follow publication time
    for row in rows:
        del row["lang"]  # detected
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    code, out, _ = run_cli(cli, str(path))
    assert code == 0
    assert [o["id"] for o in out] == [r["id"] for r in rows]
    assert all(set(o) >= {"id", "story_id", "duplicate_of", "match", "score"} for o in out)
    assert {o["id"]: o["match"] for o in out} == {
        "en-wire-1": "new",
        "en-wire-2": "near",
        "en-wire-3": "exact",
        "en-wire-4": "exact",
    }
    assert {o["id"]: o["duplicate_of"] for o in out} == {
        "en-wire-1": None,
        "en-wire-2": "en-wire-1",
        "en-wire-3": "en-wire-1",
        "en-wire-4": "en-wire-1",
    }
    assert {o["lang"] for o in out} == {"en"}
    assert len({o["story_id"] for o in out}) == 1


def test_cli_reports_bad_lines_and_processes_the_rest(cli: typer.Typer, tmp_path: Path) -> None:
    good = (FIXTURES / "zh_rewrite.jsonl").read_text("utf-8").splitlines()
    path = tmp_path / "in.jsonl"
    path.write_text(
        "\n".join([good[0], "{not json", json.dumps({"title": "no id"}), good[1], "[1, 2]"]) + "\n"
    )
    code, out, err = run_cli(cli, str(path))
    assert code != 0
    assert [o["id"] for o in out] == ["zh-wire-1", "zh-wire-2"]
    assert out[1]["duplicate_of"] == "zh-wire-1"
    assert "line 2" in err and "line 3" in err and "missing 'id'" in err and "line 5" in err
    assert "line 1:" not in err and "line 4:" not in err


def test_cli_bad_records_never_stop_the_batch(cli: typer.Typer, tmp_path: Path) -> None:
    """No text, no date, an unreadable date, a 2 MB body, a number as id: each assigned or reported."""
    en, de, zh = [
        json.loads(line) for line in (FIXTURES / "cross_language.jsonl").read_text("utf-8").splitlines()
    ]
    rows = [
        en,
        {"id": "no-text", "title": de["title"], "lang": "de", "published": de["published"]},
        {**zh, "id": "no-date", "published": None},
        {**de, "id": "bad-date", "published": "next Tuesday-ish"},
        {**en, "id": "huge", "url": None, "text": en["text"] + " x" * 1_000_000},
        {"id": 42, "text": "Ein Artikel ohne Titel über etwas ganz anderes, nämlich Gartenbau im Frühling."},
        {"id": "empty", "title": "  ", "text": ""},
        {"id": "bad-type", "title": "x", "text": ["not", "a", "string"]},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    code, out, err = run_cli(cli, str(path))
    assert code == 1  # bad lines were skipped
    assert [o["id"] for o in out] == ["x-en", "no-text", "no-date", "bad-date", "huge", "42"]
    story = {o["id"]: o["story_id"] for o in out}
    assert story["no-text"] == story["no-date"] == story["bad-date"] == story["x-en"]
    assert story["huge"] == story["x-en"] and story["42"] != story["x-en"]
    assert "line 4: 'published' 'next Tuesday-ish' is not a date" in err
    assert "line 7: needs a non-empty 'title' or 'text'" in err and "line 8: 'text' must be a string" in err


def test_cli_threshold_option(cli: typer.Typer) -> None:
    code, out, _ = run_cli(cli, str(FIXTURES / "wire_de.jsonl"), "--threshold", "0.99")
    assert code == 0 and out[1]["duplicate_of"] is None and out[0]["story_id"] == out[1]["story_id"]
    code, _, err = run_cli(cli, str(FIXTURES / "wire_de.jsonl"), "--threshold", "1.5")
    assert code != 0 and "threshold" in err


def test_vectors_are_compared_only_within_one_model(corpus: dict[str, list[ArticleInput]]) -> None:
    en, de, _ = corpus["cross_language.jsonl"]
    assert de.vector is not None
    other = replace(
        de, embedding_model="another-model", vector=np.ones_like(de.vector) / np.sqrt(de.vector.size)
    )
    out = decide_all([en, other])
    assert out[0].story_id != out[1].story_id


def test_the_outlets_own_name_is_no_evidence_of_one_story() -> None:
    from enrich.same_story import COLUMN, pair_features

    first = fingerprint(
        ArticleInput(
            id="a1",
            title="Harbour council approves new tram line",
            text="The council voted on Monday, Circuit Daily learned. Circuit Daily reporters attended.",
            lang="en",
            source="circuit-daily",
        )
    )
    second = fingerprint(
        ArticleInput(
            id="a2",
            title="Chip maker opens research lab",
            text="The company hired forty engineers, Circuit Daily learned. Circuit Daily visited the lab.",
            lang="en",
            source="circuit-daily",
        )
    )
    assert "circuit" not in first.names and "daily" not in second.names
    shared = pair_features(to_fingerprint(first), [to_fingerprint(second)])[0, COLUMN["names_shared"]]
    assert shared == 0.0


SEMEVAL = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "neardup"
    / "semeval2022_task8"
    / "training_set.csv"
)


@pytest.mark.skipif(not SEMEVAL.is_file(), reason="../shared/data/neardup absent")
def test_cli_train_rebuilds_a_model_and_prints_figures_per_language_pair(
    cli: typer.Typer, tmp_path: Path
) -> None:
    """A slice of the training pairs (the full run is `newsradar dedupe train`, about 20 s with cached
    vectors): the model file is written and loads, the table has every language pair."""
    import csv
    import sys

    from enrich.same_story import Model

    csv.field_size_limit(sys.maxsize)
    with SEMEVAL.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["pair_id"].replace("_", "").isdigit()]
    same = [r for r in rows if float(r["Overall"]) <= 1.5][:40]
    different = [r for r in rows if float(r["Overall"]) >= 3.5][:40]
    data = tmp_path / "pairs.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(same + different)
    out = tmp_path / "model.json"
    result = CliRunner().invoke(
        cli, ["dedupe", "train", "--data", str(data), "--out", str(out), "--repeats", "1", "--folds", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "learned (nested CV)" in result.stdout and "cosine, threshold from training folds" in result.stdout
    assert "pool clustering" in result.stdout
    for group in ("de-de", "de-en", "en-en", "others", "all"):
        assert group in result.stdout
    model = Model.load(out)
    assert model.features[0] == "cos" and 0.0 < model.threshold < 1.0
    bad = CliRunner().invoke(cli, ["dedupe", "train", "--data", str(data), "--features", "cos,nonsense"])
    assert bad.exit_code != 0 and "unknown feature" in bad.stderr
