"""The crawl report: Scrapy's flat stats turned into per-source and per-run counters.

Spiders count under `newsradar/<source>/<counter>` (`discovered`, `fetched`, `extracted`,
`skipped/<reason>`, `failed/<reason>`, `notes/<anomaly>`, `documents/<kind>`); this module folds
them into the JSON written next to every batch and printed by `newsradar crawl`.
"""

from __future__ import annotations

from typing import Any

PREFIX = "newsradar/"
SCALARS = ("discovered", "fetched", "extracted")
GROUPS = ("skipped", "failed", "notes", "documents")


def empty_counts() -> dict[str, Any]:
    return {**{key: 0 for key in SCALARS}, **{group: {} for group in GROUPS}}


def per_source(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sources: dict[str, dict[str, Any]] = {}
    for key, value in stats.items():
        if not key.startswith(PREFIX) or not isinstance(value, int):
            continue
        parts = key[len(PREFIX) :].split("/")
        if len(parts) < 2:
            continue
        counts = sources.setdefault(parts[0], empty_counts())
        if len(parts) == 2 and parts[1] in SCALARS:
            counts[parts[1]] += value
        elif len(parts) == 3 and parts[1] in GROUPS:
            counts[parts[1]][parts[2]] = counts[parts[1]].get(parts[2], 0) + value
    return sources


def totals(sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    total = empty_counts()
    for counts in sources.values():
        for key in SCALARS:
            total[key] += counts[key]
        for group in GROUPS:
            for reason, value in counts[group].items():
                total[group][reason] = total[group].get(reason, 0) + value
    return total


def build_report(stats: dict[str, Any], errors: list[dict[str, str]], reason: str) -> dict[str, Any]:
    sources = per_source(stats)
    elapsed = stats.get("elapsed_time_seconds")
    return {
        "finish_reason": reason,
        "elapsed_s": round(float(elapsed), 3) if isinstance(elapsed, int | float) else None,
        "totals": totals(sources),
        "sources": sources,
        "errors": errors,
        "http": {
            "requests": stats.get("downloader/request_count", 0),
            "responses": stats.get("downloader/response_count", 0),
            "not_modified": stats.get("downloader/response_status_count/304", 0),
            "bytes": stats.get("downloader/response_bytes", 0),
            "retries": stats.get("retry/count", 0),
            "robots_forbidden": stats.get("robotstxt/forbidden", 0),
        },
    }


def format_line(name: str, counts: dict[str, Any]) -> str:
    """One human line per source for stderr."""

    def group(values: dict[str, int]) -> str:
        return ",".join(f"{key}={value}" for key, value in sorted(values.items())) or "-"

    return (
        f"{name:<24} discovered={counts['discovered']:<4} fetched={counts['fetched']:<4} "
        f"extracted={counts['extracted']:<4} skipped[{group(counts['skipped'])}] "
        f"failed[{group(counts['failed'])}]"
    )
