"""Move the articles alias to the next index version without losing a document.

Create `<alias>-v<n+1>` (the template gives it the current mapping), copy every document — with the
server's `_reindex` where the node has it, else a point-in-time scan plus bulk in the client (the
local node has no `_reindex`) — check the counts, switch the alias in one atomic `_aliases` call,
then copy again whatever was written to the old index during the copy (by `indexed_at`). The old
index stays (for rollback) unless asked to delete it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from elasticsearch import Elasticsearch

from index.capabilities import detect
from index.indexer import send_bulk
from index.mapping import (
    MAPPING_VERSION,
    alias_target,
    articles_alias,
    articles_index,
    ensure_articles_index,
    index_version,
    put_template,
    template_name,
)
from newsradar.dates import parse_iso
from newsradar.settings import Settings

Method = Literal["auto", "reindex", "client"]


class MigrationError(RuntimeError):
    pass


@dataclass
class MigrationReport:
    source: str
    target: str
    method: str
    copied: int
    caught_up: int
    deleted_old: bool


def status(client: Elasticsearch, settings: Settings) -> dict[str, Any]:
    """Alias, its index and mapping revision, the template's revision, counts, pending failures."""
    from index.failures import FailureStore

    alias = articles_alias(settings)
    target = alias_target(client, settings)
    templates = client.options(ignore_status=404).indices.get_index_template(name=template_name(settings))
    template_meta = {}
    for item in templates.get("index_templates", []):
        template_meta = item["index_template"].get("_meta", {})
    versions = client.indices.get(index=f"{alias}-v*", allow_no_indices=True)
    live_version = None
    docs = 0
    if target:
        meta = client.indices.get_mapping(index=target)[target]["mappings"].get("_meta", {})
        live_version = meta.get("mapping_version")
        docs = int(client.count(index=target)["count"])
    pending = FailureStore(settings).load()
    return {
        "alias": alias,
        "index": target,
        "indices": sorted(versions, key=lambda name: index_version(settings, name) or 0),
        "documents": docs,
        "mapping_version": live_version,
        "code_mapping_version": MAPPING_VERSION,
        "template_mapping_version": template_meta.get("mapping_version"),
        "needs_migration": bool(target) and live_version != MAPPING_VERSION,
        "pending_failures": len(pending),
    }


def _newer(client: Elasticsearch, target: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hits whose copy in `target` is missing or older (a writer may already have put a fresher one)."""
    there = client.mget(index=target, ids=[h["_id"] for h in hits], source_includes=["indexed_at"])["docs"]
    keep = []
    for hit, doc in zip(hits, there, strict=True):
        mine = hit["_source"].get("indexed_at")
        theirs = doc.get("_source", {}).get("indexed_at") if doc.get("found") else None
        if not theirs or (mine and parse_iso(mine) > parse_iso(theirs)):
            keep.append(hit)
    return keep


def _client_copy(
    client: Elasticsearch,
    source: str,
    target: str,
    query: dict[str, Any],
    batch: int,
    only_newer: bool = False,
) -> int:
    """Point-in-time scan of `source` into `target`, same ids; vectors included (ES 9 leaves them
    out of `_source` unless asked)."""
    pit = client.open_point_in_time(index=source, keep_alive="2m")["id"]
    copied = 0
    after: list[Any] | None = None
    try:
        while True:
            page = client.search(
                pit={"id": pit, "keep_alive": "2m"},
                size=batch,
                query=query,
                sort=["_shard_doc"],
                search_after=after,
                source_exclude_vectors=False,
            )
            pit = page.get("pit_id", pit)
            hits = page["hits"]["hits"]
            if not hits:
                break
            after = hits[-1]["sort"]
            if only_newer:
                hits = _newer(client, target, hits)
            actions = [{"op": "index", "index": target, "id": h["_id"], "body": h["_source"]} for h in hits]
            outcome = send_bulk(client, actions)
            if outcome.failed:
                action, reason, _ = outcome.failed[0]
                raise MigrationError(
                    f"{len(outcome.failed)} documents could not be copied to {target} "
                    f"(first: {action['id']}: {reason}); the alias still points to {source}"
                )
            copied += len(hits)
    finally:
        client.close_point_in_time(id=pit)
    return copied


def migrate(
    client: Elasticsearch,
    settings: Settings,
    *,
    method: Method = "auto",
    delete_old: bool = False,
    batch: int = 500,
    progress: Callable[[str], None] = lambda _: None,
) -> MigrationReport:
    alias = articles_alias(settings)
    caps = detect(client)
    put_template(client, settings, caps)
    source = alias_target(client, settings)
    if source is None:
        ensure_articles_index(client, settings)
        created = articles_index(settings, 1)
        return MigrationReport(created, created, "none", 0, 0, False)
    number = index_version(settings, source)
    if number is None:
        raise MigrationError(f"alias {alias} points to {source}, which is not named {alias}-v<n>")
    target = articles_index(settings, number + 1)
    if client.indices.exists(index=target):
        holders = client.indices.get_alias(index=target)[target]["aliases"]
        if alias in holders:
            raise MigrationError(f"{target} already carries the alias {alias}")
        progress(f"removing {target}, left over from an unfinished migration")
        client.indices.delete(index=target)
    use_reindex = method == "reindex" or (method == "auto" and caps.reindex)
    if method == "reindex" and not caps.reindex:
        raise MigrationError("this node has no _reindex (reindex module missing); use --method client")
    started = datetime.now(UTC) - timedelta(seconds=5)
    client.indices.create(index=target)
    client.indices.put_settings(index=target, settings={"index": {"refresh_interval": "-1"}})
    progress(f"copying {source} -> {target} ({'_reindex' if use_reindex else 'client scan + bulk'})")
    if use_reindex:
        result = client.reindex(
            source={"index": source}, dest={"index": target}, wait_for_completion=True, refresh=True
        )
        if result.get("failures"):
            raise MigrationError(f"_reindex reported failures: {result['failures'][:3]}")
        copied = int(result.get("created", 0)) + int(result.get("updated", 0))
    else:
        copied = _client_copy(client, source, target, {"match_all": {}}, batch)
    client.indices.put_settings(index=target, settings={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=[source, target])
    have, want = client.count(index=target)["count"], client.count(index=source)["count"]
    if have < want:
        raise MigrationError(f"{target} has {have} documents, {source} {want}; the alias was not switched")
    client.indices.update_aliases(
        actions=[
            {"add": {"index": target, "alias": alias, "is_write_index": True}},
            {"remove": {"index": source, "alias": alias}},
        ]
    )
    progress(f"alias {alias} -> {target}")
    # Writers that resolved the alias before the switch may have written to the old index meanwhile.
    client.indices.refresh(index=source)
    recent = {"range": {"indexed_at": {"gte": started.isoformat()}}}
    caught_up = _client_copy(client, source, target, recent, batch, only_newer=True)
    client.indices.refresh(index=target)
    if delete_old:
        client.indices.delete(index=source)
        progress(f"deleted {source}")
    return MigrationReport(
        source, target, "reindex" if use_reindex else "client", copied, caught_up, delete_old
    )
