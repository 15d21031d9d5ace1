"""What a search hit says about its story (articles, outlets, languages), counted when it is shown.

No document keeps these facts. Kept on every member, they went stale whenever the story grew, and
keeping them right meant rewriting every earlier member on each new article: a story that grows by
one article per cycle cost writes quadratic in its size, and one ingest whose stories spanned
several chunks rewrote them chunk after chunk (0.37x raw bulk speed at 1,600 near-duplicate
documents). Counting them is one aggregation over the page's stories, asked in the same round trip
as the page's other per-story look-ups (`facts_search`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_OUTLETS = 500  # outlets listed per story; the count of articles is exact whatever the size


@dataclass(frozen=True)
class StoryFacts:
    size: int = 1
    sources: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)


def facts_search(story_ids: Iterable[str]) -> dict[str, Any]:
    """The body of one search (for `msearch`) that counts the facts of ``story_ids``."""
    ids = sorted(set(story_ids))
    return {
        "size": 0,
        "query": {"terms": {"story_id": ids}},
        "aggs": {
            "stories": {
                "terms": {"field": "story_id", "size": max(1, len(ids))},
                "aggs": {
                    "sources": {"terms": {"field": "source", "size": MAX_OUTLETS}},
                    "langs": {"terms": {"field": "lang", "size": 10}},
                },
            }
        },
    }


def read_facts(response: Mapping[str, Any]) -> dict[str, StoryFacts]:
    """Facts per story id from the answer to `facts_search`."""
    out: dict[str, StoryFacts] = {}
    for bucket in response.get("aggregations", {}).get("stories", {}).get("buckets", []):
        out[str(bucket["key"])] = StoryFacts(
            size=int(bucket["doc_count"]),
            sources=sorted(str(b["key"]) for b in bucket["sources"]["buckets"]),
            langs=sorted(str(b["key"]) for b in bucket["langs"]["buckets"]),
        )
    return out
