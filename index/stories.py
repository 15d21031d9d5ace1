"""Story state in Elasticsearch, shared by every run and every worker: the batch-shaped
:class:`enrich.dedupe.StoryState` over two indices (names and mappings in :mod:`index.mapping`).

* ``<prefix>-dedupe``: one document per article (``_id`` = article id), every record whatever its
  age: what later articles are compared against (canonical-URL key, content hash, LSH band keys,
  MinHash signature, name-like words, protagonists, title codes, ...) and the decision
  (``story_id``, ``duplicate_of``, ``match``, ``score``). A dated record's vector is not indexed here
  but in a copy of the record in ``<prefix>-dedupe-<year>w<week>``, the index of its ISO week of
  publication, where the kNN look-ups go (undated records, and records stored before the split,
  keep their vector here).
* ``<prefix>-stories``: one document per story (``_id`` = story id): what the decision needs — the
  member ids, the members' vector sum (the centroid), and ``merged_into`` when the story was merged
  into another (lookups follow it). Article-level facts (size, outlets, languages) are not
  kept here: ``index.story_facts`` counts them from the articles index.

Per batch, reads are one ``msearch`` (the batch's stored decisions, the exact and near-duplicate
look-ups as ``terms`` queries, and one filtered kNN query per article, asked only of the week
indices its time window reaches: same embedding model, published within the window or undated, only
the fields the model reads in ``_source``; the cosine comes from the kNN score, so no vector travels
back) and one search for redirects of the stories found. Writes are one bulk of the new records'
week copies, one bulk of the new records (``op_type=create``) and one bulk of story documents
(optimistic concurrency, retried on conflict). A worker that loses the race for an article adopts
the stored decision (and rewrites the copies), and stories it founded through that article follow
the stored one, so two workers deciding overlapping batches agree on every article's story id. No
scripts: the local node has no Painless.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, NotFoundError

from enrich.dedupe import (
    CandidateQuery,
    Candidates,
    Neighbours,
    Record,
    StoryDoc,
    StoryState,
    Vector,
    order_key,
    story_id_for,
)
from index.mapping import (
    EMBEDDING_DIM,
    STORIES_MAPPING,
    articles_alias,
    dedupe_index,
    dedupe_mapping,
    dedupe_partition,
    dedupe_partitions,
    dedupe_records,
    ensure_dedupe_weeks,
    ensure_index,
    stories_index,
)
from newsradar.dates import iso, iso_or_none, parse_iso_or_none
from newsradar.settings import Settings

log = logging.getLogger(__name__)

_PAGE = 2000  # exact / near-duplicate candidates per page (more are paged with search_after)
_MAX_TERMS = 30_000  # terms per query (the node's limit is 65,536)
_RETRIES = 10
_TRANSIENT = (429, 502, 503, 504)
# What each look-up returns of a stored record (besides what the model reads, for kNN hits).
_DECISION = [
    "article_id",
    "story_id",
    "duplicate_of",
    "match",
    "score",
    "lang",
    "published",
    "embedding_model",
]
_EXACT = [*_DECISION, "url_key", "content_hash"]
_NEAR = [*_DECISION, "bands", "signature"]
_HIT = ["article_id", "story_id", "duplicate_of", "lang", "published", "source", "embedding_model"]
# Record fields kept in the compact stored field `hit` (what any feature of enrich.same_story reads,
# except the MinHash signature): a model reading only these never touches _source for its kNN hits.
HIT_FIELDS = (
    "story_id",
    "duplicate_of",
    "lang",
    "published",
    "source",
    "embedding_model",
    "names",
    "leads",
    "title_codes",
    "codes",
    "numbers",
    "salient",
    "entities",
)
_OLD_MATCHES = {"url": "exact", "hash": "exact"}  # decisions stored before the learned model


# ------------------------------------------------------------------------------------------ (de)serialisation


def json_vector(vector: Vector) -> list[float]:
    """A vector for a request body, rounded to 7 decimals (|error| <= 5e-8, about float32's
    precision): half the bytes of full float reprs and 2.5x faster to encode, for the node to parse too."""
    out: list[float] = np.round(vector.astype(np.float64), 7).tolist()
    return out


def _b64(array: np.ndarray[Any, Any], dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _hit_blob(doc: Mapping[str, Any]) -> str:
    compact = {key: doc[key] for key in HIT_FIELDS if doc.get(key) not in (None, [], "")}
    return base64.b64encode(json.dumps(compact, ensure_ascii=False, separators=(",", ":")).encode()).decode()


def base_doc(record: Record) -> dict[str, Any]:
    """A record as the base index keeps it: a dated record without its vector (its week's copy is
    what kNN searches; the base index's graph then holds only undated and earlier records)."""
    doc = record_to_doc(record)
    if record.published is not None and record.vector is not None:
        doc.pop("vector", None)
    return doc


def record_to_doc(record: Record) -> dict[str, Any]:
    doc = _record_doc(record)
    doc["hit"] = _hit_blob(doc)
    return doc


def _record_doc(record: Record) -> dict[str, Any]:
    return {
        "article_id": record.article_id,
        "story_id": record.story_id,
        "duplicate_of": record.duplicate_of,
        "match": record.match,
        "score": record.score,
        "lang": record.lang,
        "source": record.source,
        "title": record.title[:1000],
        "url": record.url,
        "url_key": record.url_key,
        "content_hash": record.content_hash,
        "bands": record.bands,
        "signature": _b64(record.signature, "<u4") if record.signature is not None else None,
        "published": iso_or_none(record.published),
        "undated": True if record.published is None else None,
        "vector": json_vector(record.vector) if record.vector is not None else None,
        "embedding_model": record.embedding_model,
        "entities": record.entities,
        "salient": record.salient,
        "leads": record.leads,
        "numbers": record.numbers,
        "codes": record.codes,
        "title_codes": record.title_codes,
        "names": record.names,
        "processed_at": datetime.now(UTC).isoformat(),
    }


def _time(value: object) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    return parse_iso_or_none(value)


def hit_to_record(hit: Mapping[str, Any]) -> Record | None:
    """A kNN hit from its stored ``hit`` field (None: a record stored before the field existed)."""
    blob = hit.get("fields", {}).get("hit")
    if not blob:
        return None
    return doc_to_record({"article_id": hit["_id"], **json.loads(base64.b64decode(blob[0]))})


def doc_to_record(doc: Mapping[str, Any]) -> Record:
    signature = None
    if doc.get("signature"):
        signature = np.frombuffer(base64.b64decode(doc["signature"]), dtype="<u4").astype(np.uint64)
    vector: Vector | None = None
    if doc.get("vector") is not None:
        vector = np.asarray(doc["vector"], dtype=np.float32)
    match = doc.get("match") or "new"
    return Record(
        article_id=doc["article_id"],
        lang=doc.get("lang") or "other",
        title=doc.get("title") or "",
        source=doc.get("source"),
        url=doc.get("url"),
        url_key=doc.get("url_key"),
        content_hash=doc.get("content_hash"),
        published=_time(doc.get("published")),
        signature=signature,
        bands=list(doc.get("bands") or []),
        vector=vector,
        embedding_model=doc.get("embedding_model"),
        entities=list(doc.get("entities") or []),
        salient=list(doc.get("salient") or []),
        leads=list(doc.get("leads") or []),
        numbers=list(doc.get("numbers") or []),
        codes=list(doc.get("codes") or []),
        title_codes=list(doc.get("title_codes") or []),
        names=list(doc.get("names") or []),
        story_id=doc.get("story_id"),
        duplicate_of=doc.get("duplicate_of"),
        match=_OLD_MATCHES.get(match, match),
        score=float(doc.get("score") or 0.0),
    )


def story_to_doc(story: StoryDoc) -> dict[str, Any]:
    return {
        "story_id": story.story_id,
        "article_ids": story.article_ids,
        "vector_sum": _b64(story.vector_sum, "<f4") if story.vector_sum is not None else None,
        "vectors": story.vectors,
        "embedding_model": story.embedding_model,
        "merged_into": story.merged_into,
        "merged_from": story.merged_from,
        "created_at": iso_or_none(story.created_at),
        "updated_at": datetime.now(UTC).isoformat(),
    }


def doc_to_story(doc: Mapping[str, Any]) -> StoryDoc:
    vector_sum = None
    if doc.get("vector_sum"):
        vector_sum = np.frombuffer(base64.b64decode(doc["vector_sum"]), dtype="<f4").copy()
    return StoryDoc(
        story_id=doc["story_id"],
        article_ids=list(doc.get("article_ids") or []),
        vector_sum=vector_sum,
        vectors=int(doc.get("vectors") or 0),
        embedding_model=doc.get("embedding_model"),
        merged_into=doc.get("merged_into"),
        merged_from=list(doc.get("merged_from") or []),
        created_at=parse_iso_or_none(doc.get("created_at")),
    )


def _same_story(a: StoryDoc, b: StoryDoc) -> bool:
    """Equal apart from ``updated_at`` (a write that would change nothing is skipped)."""
    sums_equal = (a.vector_sum is None and b.vector_sum is None) or (
        a.vector_sum is not None and b.vector_sum is not None and np.array_equal(a.vector_sum, b.vector_sum)
    )
    return sums_equal and (a.article_ids, a.merged_into, a.merged_from, a.vectors) == (
        b.article_ids,
        b.merged_into,
        b.merged_from,
        b.vectors,
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# ------------------------------------------------------------------------------------------ the state


@lru_cache(maxsize=1)
def _knn_pool() -> ThreadPoolExecutor:
    """Where a batch's kNN msearch waits for the node while the caller fingerprints the batch."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="story-knn")


class EsState:
    """The :class:`enrich.dedupe.StoryState` contract over the two indices (see the module docstring)."""

    def __init__(self, client: Elasticsearch, settings: Settings, dims: int = EMBEDDING_DIM) -> None:
        self.client = client
        self.settings = settings
        self.dims = dims
        # Every record is in the base index (look-ups by id and term: one index, whatever the
        # history); a dated record's vector is not indexed there but in a copy in the index of its
        # week of publication, where the kNN look-ups go (see ``dedupe_partition``).
        self.records_index = ensure_index(client, dedupe_index(settings), dedupe_mapping(dims))
        ensure_dedupe_weeks(client, settings, dims)
        self.records = dedupe_records(settings)  # base and weeks: where a vector may be
        self.stories_index = ensure_index(client, stories_index(settings), STORIES_MAPPING)
        self.articles_alias = articles_alias(settings)
        self._ages: dict[str, float] = {}

    # ---------------------------------------------------------------------------------------- reads

    def neighbours(self, batch: Sequence[Record], query: CandidateQuery) -> Callable[[], Neighbours]:
        """The batch's kNN queries as one msearch, sent from a background thread (the node works while
        the caller fingerprints the batch). The index is refreshed first: records another batch wrote
        (without a refresh of their own) become visible to this batch's reads."""
        future = _knn_pool().submit(self._neighbours, list(batch), query)
        return future.result

    def _neighbours(self, batch: list[Record], query: CandidateQuery) -> Neighbours:
        fields = sorted({*_HIT, *query.fields})
        compact = set(query.fields) <= set(HIT_FIELDS)
        probes = [r for r in batch if r.vector is not None]
        hits: Neighbours = {r.article_id: [] for r in batch}
        if not probes:
            return hits
        operations: list[dict[str, Any]] = []
        for record in probes:
            operations.extend(self._knn(record, query, fields, compact))
        searched = sorted({name for header in operations[::2] for name in header["index"].split(",")})
        self.client.indices.refresh(index=",".join(searched), ignore_unavailable=True)
        responses = self.client.msearch(searches=operations)["responses"]
        parsed: dict[str, Record] = {}  # a stored article hit by many batch articles is parsed once
        legacy: set[str] = set()
        for response in responses:
            if "error" in response:
                raise RuntimeError(f"story candidates: kNN look-up failed: {response['error']}")
            for hit in response["hits"]["hits"]:
                if hit["_id"] not in parsed:
                    got = hit_to_record(hit) if compact else doc_to_record(hit["_source"])
                    if got is None:
                        legacy.add(hit["_id"])
                    else:
                        parsed[hit["_id"]] = got
        if legacy:  # records stored before the compact field: their _source, in one request
            old = self.client.search(
                index=self.records_index,
                query={"ids": {"values": sorted(legacy)}},
                size=len(legacy),
                source_includes=fields,
            )
            parsed.update((h["_id"], doc_to_record(h["_source"])) for h in old["hits"]["hits"])
        for record, response in zip(probes, responses, strict=True):
            pairs = [
                (parsed[h["_id"]], 2.0 * float(h["_score"]) - 1.0)
                for h in response["hits"]["hits"]
                if h["_id"] in parsed and h["_id"] != record.article_id
            ]
            hits[record.article_id] = pairs[: query.k]
        return hits

    def candidates(
        self, batch: Sequence[Record], query: CandidateQuery, neighbours: Neighbours
    ) -> Candidates:
        """One msearch for the batch's stored decisions and its exact and near-duplicate look-ups
        (terms queries), then one search for redirects of every story found."""
        ids = [r.article_id for r in batch]
        searches: list[tuple[str, dict[str, Any]]] = [
            ("stored", {"query": {"ids": {"values": ids}}, "size": len(ids), "_source": _DECISION})
        ]
        urls = sorted({r.url_key for r in batch if r.url_key})
        hashes = sorted({r.content_hash for r in batch if r.content_hash})
        keys = [("url_key", chunk) for chunk in _chunks(urls, _MAX_TERMS)]
        keys += [("content_hash", chunk) for chunk in _chunks(hashes, _MAX_TERMS)]
        for name, chunk in keys:
            body = {
                "query": {"terms": {name: chunk}},
                "size": _PAGE,
                "_source": _EXACT,
                "sort": ["article_id"],
            }
            searches.append(("exact", body))
        bands = sorted({band for r in batch for band in r.bands})
        for chunk in _chunks(bands, _MAX_TERMS):
            body = {
                "query": {"terms": {"bands": chunk}},
                "size": _PAGE,
                "_source": _NEAR,
                "sort": ["article_id"],
            }
            searches.append(("near", body))
        operations: list[dict[str, Any]] = []
        for _, body in searches:
            operations.extend(({}, body))
        responses = self.client.msearch(index=self.records_index, searches=operations)["responses"]
        stored: dict[str, Record] = {}
        exact: dict[str, Record] = {}
        near: dict[str, Record] = {}
        for (kind, body), response in zip(searches, responses, strict=True):
            if "error" in response:
                raise RuntimeError(f"story candidates: {kind} look-up failed: {response['error']}")
            page = response["hits"]["hits"]
            if kind != "stored" and len(page) >= _PAGE:
                page = page + self._rest(body, page)
            target = {"stored": stored, "exact": exact, "near": near}[kind]
            for hit in page:
                record = doc_to_record(hit["_source"])
                if kind != "stored" or record.story_id:
                    target[record.article_id] = record
        found = (r for row in neighbours.values() for r, _ in row)
        story_ids = {
            r.story_id for r in (*stored.values(), *exact.values(), *near.values(), *found) if r.story_id
        }
        redirects = self._redirects(story_ids)
        sums = self._sums(story_ids | set(redirects.values())) if query.sums else None
        return Candidates(stored, list(exact.values()), list(near.values()), neighbours, redirects, sums)

    def _knn(
        self, record: Record, query: CandidateQuery, fields: list[str], compact: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One kNN query (msearch header and body): same embedding model, published within the window
        or undated, asked only of the week indices the window reaches; the hits' fields from the
        compact stored field when the model reads only what it holds."""
        model_filter: dict[str, Any] = (
            {"term": {"embedding_model": record.embedding_model}}
            if record.embedding_model
            else {"bool": {"must_not": {"exists": {"field": "embedding_model"}}}}
        )
        filters = [model_filter]
        targets = self.records
        if query.window is not None and record.published is not None:
            weeks = dedupe_partitions(
                self.settings, record.published - query.window, record.published + query.window
            )
            targets = ",".join(weeks)
            window = {
                "gte": iso(record.published - query.window),
                "lte": iso(record.published + query.window),
            }
            filters.append(
                {
                    "bool": {
                        "should": [{"range": {"published": window}}, {"term": {"undated": True}}],
                        "minimum_should_match": 1,
                    }
                }
            )
        assert record.vector is not None
        k = query.k + 1  # the article itself may be stored already (a re-run)
        body: dict[str, Any] = {
            "query": {
                "knn": {
                    "field": "vector",
                    "query_vector": json_vector(record.vector),
                    "k": k,
                    "num_candidates": max(100, 2 * k),
                    "filter": filters,
                }
            },
            "size": k,
            "track_total_hits": False,
        }
        if compact:
            body.update(_source=False, stored_fields=["hit"])
        else:
            body["_source"] = fields
        return {"index": targets, "ignore_unavailable": True, "allow_no_indices": True}, body

    def _rest(self, body: dict[str, Any], first: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The pages after a full first page (rare: many stored copies of the batch's articles)."""
        out: list[dict[str, Any]] = []
        page = first
        while len(page) >= _PAGE:
            page = self.client.search(index=self.records_index, **body, search_after=page[-1]["sort"])[
                "hits"
            ]["hits"]
            out.extend(page)
        return out

    def _redirects(self, story_ids: set[str]) -> dict[str, str]:
        """Merged stories among ``story_ids`` (and among their targets) -> where they went."""
        out: dict[str, str] = {}
        todo = sorted(story_ids)
        while todo:
            found: dict[str, str] = {}
            for chunk in _chunks(todo, 10_000):
                response = self.client.search(
                    index=self.stories_index,
                    query={
                        "bool": {"filter": [{"ids": {"values": chunk}}, {"exists": {"field": "merged_into"}}]}
                    },
                    size=len(chunk),
                    source_includes=["merged_into"],
                )
                for hit in response["hits"]["hits"]:
                    found[hit["_id"]] = hit["_source"]["merged_into"]
            out.update(found)
            todo = sorted(set(found.values()) - set(out))
        return out

    def _sums(self, story_ids: set[str]) -> dict[str, Vector]:
        out: dict[str, Vector] = {}
        for chunk in _chunks(sorted(story_ids), 5_000):
            response = self.client.mget(
                index=self.stories_index, ids=chunk, source_includes=["story_id", "vector_sum"]
            )
            for doc in response["docs"]:
                if doc.get("found") and doc["_source"].get("vector_sum"):
                    out[doc["_id"]] = doc_to_story({"story_id": doc["_id"], **doc["_source"]}).vector_sum  # type: ignore[assignment]
        return out

    def vectors(self, article_ids: Sequence[str]) -> dict[str, Vector]:
        if not article_ids:
            return {}
        self.client.indices.refresh(index=self.records)  # rare (merge checks): searched by id
        response = self.client.search(
            index=self.records,
            # a dated record's vector is in its week's copy, not in the base index
            query={
                "bool": {"filter": [{"ids": {"values": list(article_ids)}}, {"exists": {"field": "vector"}}]}
            },
            size=len(article_ids),
            source_includes=["vector"],
            source_exclude_vectors=False,
        )
        out = {}
        for hit in response["hits"]["hits"]:
            if hit["_source"].get("vector") is not None:
                out[hit["_id"]] = np.asarray(hit["_source"]["vector"], dtype=np.float32)
        return out

    def story_age(self, story_id: str) -> float:
        if story_id not in self._ages:
            try:
                doc = self.client.get(index=self.stories_index, id=story_id, source_includes=["created_at"])
                created = parse_iso_or_none(doc["_source"].get("created_at"))
                self._ages[story_id] = created.timestamp() if created is not None else math.inf
            except NotFoundError:
                self._ages[story_id] = math.inf
        return self._ages[story_id]

    def get(self, article_id: str) -> Record | None:
        try:
            response = self.client.get(index=self.records_index, id=article_id, source_exclude_vectors=False)
        except NotFoundError:
            return None
        record = doc_to_record(response["_source"])
        if record.vector is None and record.published is not None:  # dated: the vector is the week's
            record.vector = self.vectors([article_id]).get(article_id)
        return record

    def story(self, story_id: str) -> StoryDoc | None:
        try:
            response = self.client.get(index=self.stories_index, id=story_id)
        except NotFoundError:
            return None
        return doc_to_story(response["_source"])

    # ---------------------------------------------------------------------------------------- writes

    def _bulk(self, operations: list[dict[str, Any]], *, refresh: bool = False) -> list[dict[str, Any]]:
        """One bulk request; items the node answers with 429/5xx are sent again (with backoff)."""
        results: list[dict[str, Any]] = [{} for _ in range(len(operations) // 2)]
        pending = list(range(len(results)))
        for attempt in range(_RETRIES):
            body = [part for i in pending for part in operations[2 * i : 2 * i + 2]]
            response = self.client.bulk(operations=body, refresh=refresh)
            retry = []
            for i, item in zip(pending, response["items"], strict=True):
                info = next(iter(item.values()))
                results[i] = info
                if int(info.get("status", 500)) in _TRANSIENT:
                    retry.append(i)
            if not retry:
                return results
            pending = retry
            time.sleep(min(10.0, 0.5 * 2**attempt))
        return results

    def commit(
        self, records: Sequence[Record], merges: Mapping[str, str], completed: Sequence[Record] = ()
    ) -> list[Record]:
        operations: list[dict[str, Any]] = []
        for record in records:
            operations += [
                {"create": {"_index": self.records_index, "_id": record.article_id}},
                base_doc(record),
            ]
        created: list[Record] = []
        lost: list[Record] = []
        # The week copies first: a run that dies between the two writes leaves a copy that its re-run
        # overwrites, never a stored record that no kNN look-up can find.
        self._write_weeks(records)
        if operations:
            # no refresh here: the next batch's reads refresh first (see neighbours)
            for record, info in zip(records, self._bulk(operations), strict=True):
                status = int(info.get("status", 500))
                if status in (200, 201):
                    created.append(record)
                elif status == 409:
                    lost.append(record)
                else:
                    raise RuntimeError(f"dedupe record {record.article_id} not stored: {info.get('error')}")
        adopted: list[Record] = []
        merges = dict(merges)
        if lost:
            adopted, created, merges = self._adopt(lost, created, merges)
            # The copies now carry the stored decisions: those of the articles another worker
            # stored first, and the stories this batch's own articles moved to.
            stored = {r.article_id: r for r in adopted}
            self._write_weeks(
                [
                    *created,
                    *(
                        replace(
                            r,
                            story_id=stored[r.article_id].story_id,
                            duplicate_of=stored[r.article_id].duplicate_of,
                            match=stored[r.article_id].match,
                            score=stored[r.article_id].score,
                        )
                        for r in lost
                    ),
                ]
            )
        self._write_stories([*created, *completed], merges)
        if merges:
            self._rewrite_articles(merges)
        by_id = {r.article_id: r for r in (*created, *adopted)}
        return [by_id[r.article_id] for r in records]

    def _adopt(
        self, lost: list[Record], created: list[Record], merges: dict[str, str]
    ) -> tuple[list[Record], list[Record], dict[str, str]]:
        """Another worker stored these articles first: take its decisions. A story this batch founded
        that holds such an article is the story the other worker put it in: what this batch put there
        moves to that story (so both workers end with one story for the event, under one id)."""
        response = self.client.mget(
            index=self.records_index, ids=[r.article_id for r in lost], source_includes=_DECISION
        )
        stored = {doc["_id"]: doc_to_record(doc["_source"]) for doc in response["docs"] if doc.get("found")}
        adopted = [stored.get(r.article_id, r) for r in lost]
        founded = {story_id_for(r.article_id) for r in (*lost, *created) if r.match == "new"}
        moved: dict[str, str] = {}
        for r in sorted(lost, key=order_key):
            theirs = stored[r.article_id].story_id if r.article_id in stored else None
            if r.story_id in founded and theirs and theirs != r.story_id:
                moved.setdefault(r.story_id, theirs)
        if not moved:
            return adopted, created, merges
        fixed: list[Record] = []
        operations: list[dict[str, Any]] = []
        for record in created:
            if record.story_id in moved:
                match = "story" if record.match == "new" else record.match
                record = replace(record, story_id=moved[record.story_id], match=match)
                operations += [
                    {"update": {"_index": self.records_index, "_id": record.article_id}},
                    {"doc": {"story_id": record.story_id, "match": record.match}},
                ]
            fixed.append(record)
        if operations:
            self._bulk(operations)
        merges = {
            moved.get(a, a): moved.get(b, b) for a, b in merges.items() if moved.get(a, a) != moved.get(b, b)
        }
        return adopted, fixed, merges

    def _write_weeks(self, records: Sequence[Record]) -> None:
        """The kNN copies of dated records, each in its week's index (created from the template by its
        first write); written again, whole, whenever a record's decision changes."""
        dated = [r for r in records if r.published is not None and r.vector is not None]
        operations: list[dict[str, Any]] = []
        for record in dated:
            name = dedupe_partition(self.settings, record.published)
            operations += [{"index": {"_index": name, "_id": record.article_id}}, record_to_doc(record)]
        for record, info in zip(
            dated,
            self._bulk(operations) if operations else [],
            strict=True,
        ):
            if int(info.get("status", 500)) not in (200, 201):
                raise RuntimeError(f"kNN copy of {record.article_id} not stored: {info.get('error')}")

    def _write_stories(self, members: Sequence[Record], merges: Mapping[str, str]) -> None:
        """Every touched story once: read (mget), merge, write back conditionally; retried on conflict."""
        by_story: dict[str, list[Record]] = {}
        for record in sorted(members, key=order_key):
            if record.story_id:
                by_story.setdefault(record.story_id, []).append(record)
        todo = set(by_story) | set(merges) | set(merges.values())
        now = datetime.now(UTC)
        for attempt in range(_RETRIES):
            if not todo:
                return
            ids = sorted(todo)
            response = self.client.mget(index=self.stories_index, ids=ids)
            current: dict[str, tuple[StoryDoc, dict[str, Any] | None]] = {}
            for sid, doc in zip(ids, response["docs"], strict=True):
                if doc.get("found"):
                    current[sid] = (doc_to_story(doc["_source"]), doc)
                else:
                    current[sid] = (StoryDoc(sid, created_at=now), None)
            new = {sid: story.with_members(by_story.get(sid, ())) for sid, (story, _) in current.items()}
            for absorbed, survivor in merges.items():
                new[survivor] = new[survivor].absorbing(new[absorbed])
                new[absorbed] = replace(new[absorbed], merged_into=survivor)
            operations: list[dict[str, Any]] = []
            order: list[str] = []
            for sid in ids:
                story, raw = current[sid]
                if raw is not None and _same_story(story, new[sid]):
                    continue
                if raw is None:
                    header = {"create": {"_index": self.stories_index, "_id": sid}}
                else:
                    header = {
                        "index": {
                            "_index": self.stories_index,
                            "_id": sid,
                            "if_seq_no": raw["_seq_no"],
                            "if_primary_term": raw["_primary_term"],
                        }
                    }
                operations += [header, story_to_doc(new[sid])]
                order.append(sid)
            if not operations:
                return
            todo = set()
            for sid, info in zip(order, self._bulk(operations, refresh=bool(merges)), strict=True):
                status = int(info.get("status", 500))
                if status == 409:
                    todo.add(sid)  # another worker wrote this story first: read and merge again
                elif status not in (200, 201):
                    raise RuntimeError(f"story {sid} not stored: {info.get('error')}")
            if todo:
                time.sleep(0.01 * (attempt + 1))
        raise RuntimeError(
            f"stories {sorted(todo)[:5]}: gave up after {_RETRIES} concurrent-update conflicts"
        )

    def _rewrite_articles(self, merges: Mapping[str, str]) -> None:
        """Articles already indexed under a merged story move to the story it went into (the index
        stage then brings the story facts up to date); a lookup of the old id still redirects."""
        if not self.client.indices.exists(index=self.articles_alias):
            return
        operations: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while True:
            page = self.client.search(
                index=self.articles_alias,
                query={"terms": {"story_id": sorted(merges)}},
                source_includes=["story_id"],
                size=1000,
                sort=["_doc"],
                search_after=after,
            )["hits"]["hits"]
            for hit in page:
                operations += [
                    {"update": {"_index": hit["_index"], "_id": hit["_id"]}},
                    {"doc": {"story_id": merges[hit["_source"]["story_id"]]}},
                ]
            if len(page) < 1000:
                break
            after = page[-1]["sort"]
        if operations:
            self._bulk(operations)
            self.client.indices.refresh(index=self.articles_alias)


# ------------------------------------------------------------------------------------------ for the stage


def story_state(client: Elasticsearch, settings: Settings) -> Callable[[int], StoryState]:
    """The dedupe stage's state factory (``StageContext.stories``): the shared state in the index."""
    return lambda dims: EsState(client, settings, dims=dims)
