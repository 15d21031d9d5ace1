"""Story state in the real Elasticsearch node: persistence across runs, a second worker, story fields,
concurrent story updates, the pipeline stage and `newsradar dedupe --state es`."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from dedupekit import FIXTURES, load
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from enrich.dedupe import ArticleInput, MemoryState, Record, StoryAssigner
from enrich.stages import StageContext, stage
from index.mapping import dedupe_index, stories_index
from index.stories import EsState, story_state
from newsradar.article import Article
from newsradar.settings import Settings

pytestmark = pytest.mark.usefixtures("es")


@pytest.fixture
def isolated(settings: Settings) -> Settings:
    """Own indices per test (under the session prefix, so the session cleanup removes them)."""
    return settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-{uuid.uuid4().hex[:6]}"})


@pytest.fixture(scope="module")
def batch() -> list[ArticleInput]:
    return [
        item
        for name in ("wire_en.jsonl", "cross_language.jsonl", "zh_rewrite.jsonl", "hard_negatives.jsonl")
        for item in load(name)
    ]


def decisions(records: list[Record]) -> dict[str, tuple[str | None, str | None]]:
    return {r.article_id: (r.story_id, r.duplicate_of) for r in records}


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index)["count"])


def test_es_state_decides_like_the_memory_state(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    in_memory = decisions(StoryAssigner(MemoryState()).assign_batch(batch))
    in_es = decisions(StoryAssigner(EsState(es, isolated)).assign_batch(batch))
    assert in_es == in_memory
    assert (
        len({s for s, _ in in_es.values()}) == 7
    )  # the wire copies, the triple, the zh pair, four negatives


def test_rerun_and_second_worker_give_the_same_answer(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    first = decisions(StoryAssigner(EsState(es, isolated)).assign_batch(batch))
    stories_after_first = count(es, stories_index(isolated))
    records_after_first = count(es, dedupe_index(isolated))
    sizes = {s: EsState(es, isolated).story(s or "").size for s, _ in first.values()}  # type: ignore[union-attr]

    # The same batch again, through a brand-new state object (another process or machine).
    worker_b = EsState(es, isolated)
    again = decisions(StoryAssigner(worker_b).assign_batch(batch[::-1]))
    assert again == first
    assert count(es, stories_index(isolated)) == stories_after_first
    assert count(es, dedupe_index(isolated)) == records_after_first == len(batch)
    assert {s: worker_b.story(s or "").size for s in sizes} == sizes  # type: ignore[union-attr]


def test_second_worker_joins_stories_started_by_the_first(es: Elasticsearch, isolated: Settings) -> None:
    en, de, zh = load("cross_language.jsonl")
    wire = load("wire_en.jsonl")
    worker_a = StoryAssigner(EsState(es, isolated))
    worker_b = StoryAssigner(EsState(es, isolated))
    a = worker_a.assign_batch([en, wire[0]])
    b = worker_b.assign_batch([de, zh, wire[1]])
    assert b[0].story_id == b[1].story_id == a[0].story_id
    assert b[2].story_id == a[1].story_id and b[2].duplicate_of == wire[0].id


def test_story_fields_follow_later_and_earlier_members(es: Elasticsearch, isolated: Settings) -> None:
    en, de, zh = load("cross_language.jsonl")
    state = EsState(es, isolated)
    first = StoryAssigner(state).assign_batch([de, zh])
    story_id = first[0].story_id
    assert story_id is not None and first[1].story_id == story_id
    story = state.story(story_id)
    assert story is not None
    assert (story.first_article_id, story.first_source, story.first_lang) == ("x-de", "netzpuls", "de")
    assert (
        story.size == 2 and story.languages == ["de", "zh"] and story.outlets == ["netzpuls", "zhiku-kuaibao"]
    )

    # A later run brings the English report, published before both: it joins, and becomes the first report.
    later = EsState(es, isolated)
    joined = StoryAssigner(later).assign(en)
    assert joined.story_id == story_id  # the id stays that of the story's founder
    story = later.story(story_id)
    assert story is not None
    assert (story.first_article_id, story.first_source, story.first_lang) == ("x-en", "circuit-wire", "en")
    assert story.first_published == en.published
    assert story.first_title == en.title
    assert story.size == 3 and story.languages == ["de", "en", "zh"]
    assert story.outlets == ["circuit-wire", "netzpuls", "zhiku-kuaibao"]
    es.indices.refresh(index=stories_index(isolated))
    doc = es.get(index=stories_index(isolated), id=story_id)["_source"]
    assert doc["size"] == 3 and doc["first_lang"] == "en" and doc["updated_at"]


def test_vectors_persist_for_knn(es: Elasticsearch, isolated: Settings) -> None:
    """ES 9 leaves vectors out of _source by default: the state must read them back explicitly."""
    en, de, _ = load("cross_language.jsonl")
    StoryAssigner(EsState(es, isolated)).assign(en)
    stored = EsState(es, isolated).get(en.id)
    assert stored is not None and stored.vector is not None and stored.signature is not None
    assert stored.vector.shape == (384,)
    assert abs(float(stored.vector @ en.vector) - 1.0) < 1e-4  # type: ignore[operator]
    assert (stored.signature == StoryAssigner(MemoryState()).assign(en).signature).all()
    joined = StoryAssigner(EsState(es, isolated)).assign(de)
    assert joined.match == "story" and joined.story_id == stored.story_id


def test_concurrent_members_are_all_counted(es: Elasticsearch, isolated: Settings) -> None:
    """Many workers add members to one story at once: optimistic concurrency keeps every member."""
    base = load("cross_language.jsonl")[0]
    state = EsState(es, isolated)
    founder = StoryAssigner(state).assign(base)
    members = [
        replace(
            StoryAssigner(MemoryState()).assign(replace(base, id=f"m{i}", source=f"outlet-{i}")),
            story_id=founder.story_id,
        )
        for i in range(8)
    ]
    threads = [threading.Thread(target=EsState(es, isolated).add_to_story, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    story = state.story(founder.story_id or "")
    assert story is not None and story.size == 9
    assert len(story.outlets) == 9


def test_pipeline_stage_fills_articles(es: Elasticsearch, isolated: Settings) -> None:
    en, de, zh = load("cross_language.jsonl")
    articles = []
    for item in (en, de, zh):
        articles.append(
            Article(
                id=item.id,
                url=item.url or "",
                canonical_url=item.url or "",
                source=item.source or "",
                title=item.title,
                text=item.text,
                published=item.published,
                lang=item.lang,
            )
        )
    articles[0].embedding = [float(x) for x in en.vector]  # type: ignore[union-attr]
    articles[0].embedding_model = en.embedding_model
    context = StageContext(isolated, stories=story_state(es, isolated))
    stage("embed").run(articles, context)  # keeps the vector the first article brought
    assign = stage("dedupe").run
    assign(articles, context)
    assert all(a.story_id for a in articles)
    assert len({a.story_id for a in articles}) == 1
    assert all(a.duplicate_of is None for a in articles)
    # A re-crawl of the same page under a tracking URL is a duplicate of the first.
    copy = articles[1].model_copy(
        update={
            "id": "x-de-copy",
            "url": (articles[1].url + "?utm_source=x"),
            "canonical_url": articles[1].url + "?utm_source=x",
            "story_id": None,
            "duplicate_of": None,
        }
    )
    assign([copy], context)
    assert copy.duplicate_of == "x-de" and copy.story_id == articles[0].story_id
    story = EsState(es, isolated).story(articles[0].story_id or "")
    assert story is not None and story.size == 4


def test_cli_with_es_state_persists_between_invocations(
    es: Elasticsearch, isolated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands.dedupe import register
    from newsradar.settings import get_settings

    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", isolated.index_prefix)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Test app."""

    def run(path: Path, *extra: str) -> list[dict[str, object]]:
        result = CliRunner().invoke(app, ["dedupe", str(path), *extra])
        assert result.exit_code == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    try:
        first = run(FIXTURES / "cross_language.jsonl", "--state", "es")
        assert len({o["story_id"] for o in first}) == 1
        # Fresh state (the default) knows nothing of the ES state; ES state remembers across invocations.
        assert run(FIXTURES / "cross_language.jsonl")[0]["match"] == "new"
        again = run(FIXTURES / "cross_language.jsonl", "--state", "es")
        assert again == first
        assert count(es, stories_index(isolated)) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
