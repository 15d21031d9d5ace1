"""Story state in the real Elasticsearch node: the same decisions as in memory, a fixed number of
requests per batch, re-runs and concurrent workers on overlapping batches agreeing, merges recorded as
redirects that later look-ups follow, the pipeline stage and `newsradar dedupe --state es`."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from dedupekit import FIXTURES, load
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from enrich.dedupe import ArticleInput, MemoryState, Record, StoryAssigner, fingerprint, story_id_for
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


def decisions(records: list[Record]) -> dict[str, tuple[str | None, str | None, str]]:
    return {r.article_id: (r.story_id, r.duplicate_of, r.match) for r in records}


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
        len({s for s, _, _ in in_es.values()}) == 7
    )  # the wire copies, the triple, the zh pair, four negatives


def test_small_batches_through_es_decide_like_one_batch_in_memory(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    """Earlier batches come back through the kNN, exact and LSH queries: the same evidence as in memory."""
    ordered = sorted(batch, key=lambda i: (i.published is None, i.published, i.id))
    in_memory = decisions(StoryAssigner(MemoryState()).assign_batch(ordered))
    state = EsState(es, isolated)
    in_es: dict[str, tuple[str | None, str | None, str]] = {}
    for start in range(0, len(ordered), 3):
        in_es.update(decisions(StoryAssigner(state).assign_batch(ordered[start : start + 3])))
    assert {k: v[:2] for k, v in in_es.items()} == {k: v[:2] for k, v in in_memory.items()}


class Requests:
    """Counts the HTTP requests a client sends, by endpoint."""

    def __init__(self, es: Elasticsearch) -> None:
        self.es = es
        self.seen: Counter[str] = Counter()
        self._send = es.perform_request

    def __enter__(self) -> Counter[str]:
        def counting(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            self.seen[f"{method} {path.split('?')[0].rsplit('/', 1)[-1]}"] += 1
            return self._send(method, path, *args, **kwargs)

        self.es.perform_request = counting  # type: ignore[method-assign]
        return self.seen

    def __exit__(self, *exc: object) -> None:
        self.es.perform_request = self._send  # type: ignore[method-assign]


def test_a_batch_costs_the_same_few_requests_whatever_its_size(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    """Reads: a refresh and one msearch of kNN queries (one per article, sent while the batch is
    fingerprinted), one msearch of the stored decisions and the exact and LSH look-ups, one redirect
    search; writes: one bulk of records, one bulk of their kNN copies (in their weeks' indices), one
    read and one bulk of the touched stories."""
    client = es.options()  # its own transport wrapper, so the counting stays in this test
    state = EsState(client, isolated)
    StoryAssigner(state).assign_batch(batch[:3])  # something stored, so every look-up finds candidates
    for items in (batch[3:6], batch[6:]):
        with Requests(client) as seen:
            StoryAssigner(state).assign_batch(items)
        expected = {
            "POST _refresh": 1,
            "POST _msearch": 2,
            "POST _search": 1,
            "PUT _bulk": 3,
            "POST _mget": 1,
        }
        assert seen == Counter(expected), seen


def test_rerun_and_second_worker_give_the_same_answer(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    first = decisions(StoryAssigner(EsState(es, isolated)).assign_batch(batch))
    stories_after_first = count(es, stories_index(isolated))
    records_after_first = count(es, dedupe_index(isolated))
    members = {s: EsState(es, isolated).story(s or "").article_ids for s, _, _ in first.values()}  # type: ignore[union-attr]

    # The same batch again, through a brand-new state object (another process or machine).
    worker_b = EsState(es, isolated)
    again = decisions(StoryAssigner(worker_b).assign_batch(batch[::-1]))
    assert again == first
    assert count(es, stories_index(isolated)) == stories_after_first
    assert count(es, dedupe_index(isolated)) == records_after_first == len(batch)
    assert {s: worker_b.story(s or "").article_ids for s in members} == members  # type: ignore[union-attr]


def test_second_worker_joins_stories_started_by_the_first(es: Elasticsearch, isolated: Settings) -> None:
    en, de, zh = load("cross_language.jsonl")
    wire = load("wire_en.jsonl")
    a = StoryAssigner(EsState(es, isolated)).assign_batch([en, wire[0]])
    b = StoryAssigner(EsState(es, isolated)).assign_batch([de, zh, wire[1]])
    assert b[0].story_id == b[1].story_id == a[0].story_id and b[0].match == "story"
    assert b[2].story_id == a[1].story_id and b[2].duplicate_of == wire[0].id and b[2].match == "near"


class RacingState(EsState):
    """Both workers read their candidates before either writes: every shared article is a race."""

    def __init__(self, es: Elasticsearch, settings: Settings, barrier: threading.Barrier) -> None:
        super().__init__(es, settings)
        self.barrier = barrier

    def commit(
        self, records: Sequence[Record], merges: Mapping[str, str], completed: Sequence[Record] = ()
    ) -> list[Record]:
        self.barrier.wait(timeout=60)
        return super().commit(records, merges, completed)


def test_concurrent_workers_on_overlapping_batches_agree(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    """Worker A decides articles 0-9, worker B 5-14, at the same moment. Each article is stored once;
    the loser of a race adopts the stored decision, and what it put into a story founded by an article
    it lost follows that article's stored story: both report the same story for every shared article,
    and every story document lists exactly the articles stored with its id."""
    barrier = threading.Barrier(2)
    parts = {"a": batch[:10], "b": batch[5:]}
    out: dict[str, list[Record]] = {}

    def work(name: str) -> None:
        out[name] = StoryAssigner(RacingState(es, isolated, barrier)).assign_batch(parts[name])

    threads = [threading.Thread(target=work, args=(name,)) for name in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = ({r.article_id: r.story_id for r in out[k]} for k in ("a", "b"))
    assert {i: a[i] for i in a.keys() & b.keys()} == {i: b[i] for i in a.keys() & b.keys()}
    state = EsState(es, isolated)
    stored = {i.id: state.get(i.id) for i in batch}
    assert all(r is not None for r in stored.values())
    for article_id, story in {**a, **b}.items():
        assert stored[article_id].story_id == story  # type: ignore[union-attr]
    by_story: dict[str, set[str]] = {}
    for r in stored.values():
        by_story.setdefault(r.story_id or "", set()).add(r.article_id)  # type: ignore[union-attr]
    for story_id, members in by_story.items():
        doc = state.story(story_id)
        assert doc is not None and set(doc.article_ids) == members, story_id
    assert count(es, dedupe_index(isolated)) == len(batch)
    # the grouping is still the right one
    in_memory = decisions(StoryAssigner(MemoryState()).assign_batch(batch))
    same = {(x, y) for x in stored for y in stored if in_memory[x][0] == in_memory[y][0]}
    assert same == {(x, y) for x in stored for y in stored if stored[x].story_id == stored[y].story_id}  # type: ignore[union-attr]


def test_a_merge_is_recorded_as_a_redirect_that_lookups_follow(es: Elasticsearch, isolated: Settings) -> None:
    """Two workers founded two stories for one event (each saw nothing of the other). A third report
    matches both strongly, and their members match each other: the younger story is merged into the
    older one, keeps a `merged_into` redirect, its indexed articles move, and a later article that only
    finds the absorbed story's member lands in the surviving story."""
    from index.indexer import index_articles

    en = load("cross_language.jsonl")[0]
    state = EsState(es, isolated)
    founders = []
    for name in ("m1", "m2"):  # what the two workers stored, one after the other
        record = fingerprint(replace(en, id=name, url=f"https://{name}.example/a"))
        record.story_id, record.match = story_id_for(name), "new"
        state.commit([record], {})
        founders.append(record)
    s1, s2 = founders[0].story_id, founders[1].story_id
    assert s1 and s2 and s1 != s2
    articles = [
        Article(
            id=r.article_id,
            url=r.url or "",
            canonical_url=r.url or "",
            source="s",
            title=en.title,
            lang="en",
            story_id=r.story_id,
        )
        for r in founders
    ]
    index_articles(es, isolated, articles)

    third = replace(en, id="m3", url="https://m3.example/a", text="Rewritten entirely: nothing in common.")
    joined = StoryAssigner(EsState(es, isolated)).assign(third)
    assert joined.match == "story" and joined.story_id == s1
    assert state.story(s2).merged_into == s1  # type: ignore[union-attr]
    survivor = state.story(s1)
    assert (
        survivor is not None and survivor.article_ids == ["m1", "m2", "m3"] and survivor.merged_from == [s2]
    )
    assert survivor.vectors == 3
    es.indices.refresh(index=f"{isolated.index_prefix}-articles")
    moved = es.get(index=f"{isolated.index_prefix}-articles", id="m2")["_source"]
    assert moved["story_id"] == s1

    # The record of m2 still says s2; the redirect is followed, and a rerun reports the current story.
    assert state.get("m2").story_id == s2  # type: ignore[union-attr]
    later = replace(en, id="m4", url="https://m4.example/a", text="Another rewrite, other words again.")
    assert StoryAssigner(EsState(es, isolated)).assign(later).story_id == s1
    rerun = StoryAssigner(EsState(es, isolated)).assign_batch([replace(en, id="m2")])
    assert rerun[0].story_id == s1


def test_vectors_persist_for_knn(es: Elasticsearch, isolated: Settings) -> None:
    """ES 9 leaves vectors out of _source by default: the state reads them back explicitly when asked;
    candidates come with the kNN score as cosine instead."""
    en, de, _ = load("cross_language.jsonl")
    StoryAssigner(EsState(es, isolated)).assign(en)
    state = EsState(es, isolated)
    stored = state.get(en.id)
    assert stored is not None and stored.vector is not None and stored.signature is not None
    assert abs(float(stored.vector @ en.vector) - 1.0) < 1e-4  # type: ignore[operator]
    assert (stored.signature == fingerprint(en).signature).all()
    assert np.allclose(state.vectors([en.id])[en.id], en.vector, atol=1e-6)  # type: ignore[arg-type]
    joined = StoryAssigner(EsState(es, isolated)).assign(de)
    assert joined.match == "story" and joined.story_id == stored.story_id


def test_concurrent_members_of_one_story_are_all_counted(es: Elasticsearch, isolated: Settings) -> None:
    """Many workers add members to one story at once: optimistic concurrency keeps every member."""
    base = load("cross_language.jsonl")[0]
    founder = StoryAssigner(EsState(es, isolated)).assign(base)
    members = []
    for i in range(8):
        record = fingerprint(replace(base, id=f"m{i}", source=f"outlet-{i}", url=f"https://o{i}.example/a"))
        record.story_id, record.match = founder.story_id, "story"
        members.append(record)
    threads = [threading.Thread(target=EsState(es, isolated).commit, args=([m], {})) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    story = EsState(es, isolated).story(founder.story_id or "")
    assert story is not None and len(story.article_ids) == 9 and story.vectors == 9


def test_a_stories_index_of_the_old_layout_gets_the_new_fields(es: Elasticsearch, isolated: Settings) -> None:
    """Deployments have a stories index with the earlier strict mapping (first report, outlets, ...):
    the state adds its new fields instead of failing every write."""
    es.indices.create(
        index=stories_index(isolated),
        mappings={
            "dynamic": "strict",
            "properties": {
                "story_id": {"type": "keyword"},
                "first_title": {"type": "text"},
                "article_ids": {"type": "keyword"},
                "size": {"type": "integer"},
            },
        },
    )
    en, de, _ = load("cross_language.jsonl")
    out = StoryAssigner(EsState(es, isolated)).assign_batch([en, de])
    story = EsState(es, isolated).story(out[0].story_id or "")
    assert story is not None and story.article_ids == ["x-de", "x-en"] and story.vector_sum is not None


def test_records_of_the_old_layout_are_still_found(es: Elasticsearch, isolated: Settings) -> None:
    """A dedupe index from before the compact `hit` field and the `undated` flag: the mapping gains the
    fields, and a stored record without them still comes back as a kNN candidate (from its _source)."""
    from index.mapping import dedupe_mapping
    from index.stories import record_to_doc

    old = dedupe_mapping(384)
    del old["properties"]["hit"], old["properties"]["undated"]
    es.indices.create(index=dedupe_index(isolated), mappings=old)
    en, de, _ = load("cross_language.jsonl")
    record = fingerprint(en)
    record.story_id, record.match = story_id_for(en.id), "new"
    doc = record_to_doc(record)
    del doc["hit"], doc["undated"]
    doc["match"] = "url"  # a match name of the earlier algorithm
    es.index(index=dedupe_index(isolated), id=en.id, document=doc, refresh=True)
    joined = StoryAssigner(EsState(es, isolated)).assign(de)
    assert joined.match == "story" and joined.story_id == record.story_id
    assert EsState(es, isolated).get(en.id).match == "exact"  # type: ignore[union-attr]


def test_records_live_in_week_indices_and_stories_cross_week_borders(
    es: Elasticsearch, isolated: Settings
) -> None:
    """Every record is in the base index (look-ups by id and term); its vector is indexed in a copy
    in the index of its ISO week, and a kNN look-up asks only the weeks its window reaches, so an
    article from Monday morning still joins the story of Sunday night's article."""
    from datetime import timedelta

    en, de, _ = load("cross_language.jsonl")
    sunday = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # last hour of ISO week 48
    first = StoryAssigner(EsState(es, isolated)).assign(replace(en, published=sunday))
    monday = replace(de, published=sunday + timedelta(hours=2))  # week 49
    joined = StoryAssigner(EsState(es, isolated)).assign(monday)
    assert joined.match == "story" and joined.story_id == first.story_id
    base = dedupe_index(isolated)
    assert count(es, f"{base}-2026w48") == 1 and count(es, f"{base}-2026w49") == 1
    assert count(es, base) == 2
    stored = es.search(index=base, source_exclude_vectors=False)["hits"]["hits"]
    assert all("vector" not in hit["_source"] for hit in stored)  # the base graph stays small
    got = EsState(es, isolated).get(de.id)
    assert got is not None and got.vector is not None  # read back from its week
    undated = replace(load("zh_rewrite.jsonl")[0], published=None)
    StoryAssigner(EsState(es, isolated)).assign(undated)
    kept = EsState(es, isolated).get(undated.id)
    assert kept is not None and kept.vector is not None  # an undated record keeps its vector in the base
    mapping = es.indices.get_mapping(index=f"{base}-2026w49")[f"{base}-2026w49"]["mappings"]
    assert mapping["properties"]["vector"]["type"] == "dense_vector"  # the template's, not a guess


def test_a_run_that_died_between_its_writes_is_repaired_by_its_rerun(
    es: Elasticsearch, isolated: Settings, batch: list[ArticleInput]
) -> None:
    """The week copies are written before the records: a run that died in between left copies with
    its decisions and no records. The re-run decides again (the copies it finds are candidates like
    any stored article) and writes records and copies: every article has a copy, every copy carries
    the decision the base index holds, and every story named exists."""
    items = [replace(item, published=item.published or datetime(2026, 11, 30, tzinfo=UTC)) for item in batch]
    state = EsState(es, isolated)
    died = [replace(fingerprint(item), story_id="s-from-the-run-that-died", match="new") for item in items]
    state._write_weeks(died)  # the first of the run's writes, then nothing
    decided = {r.article_id: r.story_id for r in StoryAssigner(EsState(es, isolated)).assign_batch(items)}
    es.indices.refresh(index=f"{dedupe_index(isolated)}*")
    copies = es.search(index=f"{dedupe_index(isolated)}-*", size=100)["hits"]["hits"]
    assert {hit["_id"] for hit in copies} == set(decided)
    assert {hit["_id"]: hit["_source"]["story_id"] for hit in copies} == decided
    base = {
        hit["_id"]: hit["_source"]["story_id"]
        for hit in es.search(index=dedupe_index(isolated), size=100)["hits"]["hits"]
    }
    assert base == decided
    assert all(state.story(story_id) is not None for story_id in set(decided.values()))


def articles_of(items: list[ArticleInput]) -> Iterator[Article]:
    for item in items:
        yield Article(
            id=item.id,
            url=item.url or "",
            canonical_url=item.url or "",
            source=item.source or "",
            title=item.title,
            text=item.text,
            published=item.published,
            lang=item.lang,  # type: ignore[arg-type]
        )


def test_pipeline_stage_fills_articles(es: Elasticsearch, isolated: Settings) -> None:
    en, de, zh = load("cross_language.jsonl")
    articles = list(articles_of([en, de, zh]))
    articles[0].embedding = [float(x) for x in en.vector]  # type: ignore[union-attr]
    articles[0].embedding_model = en.embedding_model
    context = StageContext(isolated, stories=story_state(es, isolated))
    stage("embed").run(articles, context)  # keeps the vector the first article brought
    records = stage("dedupe").run(articles, context)
    assert isinstance(records, list) and [r.match for r in records] == ["new", "story", "story"]
    assert len({a.story_id for a in articles}) == 1 and all(a.duplicate_of is None for a in articles)
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
    stage("dedupe").run([copy], context)
    assert copy.duplicate_of == "x-de" and copy.story_id == articles[0].story_id
    story = EsState(es, isolated).story(articles[0].story_id or "")
    assert story is not None and len(story.article_ids) == 4


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
        assert [o["match"] for o in first] == ["new", "story", "story"]
        # Fresh state (the default) knows nothing of the ES state; ES state remembers across invocations.
        assert run(FIXTURES / "cross_language.jsonl")[0]["match"] == "new"
        again = run(FIXTURES / "cross_language.jsonl", "--state", "es")
        assert again == first
        assert count(es, stories_index(isolated)) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
