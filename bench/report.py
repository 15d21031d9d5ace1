"""What every benchmark hands to `python -m bench`: rows of one table, and the clean-up of its indices.

A figure means little alone on a shared 2-core machine, so every row carries the baseline measured
in the same run and the ratio between them; the sample sizes go with it, so a quick run is never
mistaken for a full one.
"""

from __future__ import annotations

import math
import os
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class Row:
    """One figure. `value` None = not measured (skipped or failed: `note` says why)."""

    benchmark: str
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    sample: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline or math.isnan(self.baseline) or math.isnan(self.value):
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(**{key: value for key, value in data.items() if key != "ratio"})


def skipped(benchmark: str, why: str) -> list[Row]:
    """The single row of a benchmark that could not run here (e.g. ../shared/data absent)."""
    return [Row(benchmark, "skipped", None, "", note=why)]


def fmt(value: float | None) -> str:
    """Three significant digits, no exponent for the sizes that occur here."""
    if value is None or math.isnan(value):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(rows: list[Row]) -> str:
    """A Markdown table: benchmark | figure | value | baseline | ratio | unit | sample / note."""
    lines = [
        "| benchmark | figure | value | baseline (same run) | ratio | unit | sample / note |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for row in rows:
        baseline = ""
        if row.baseline is not None:
            baseline = f"{fmt(row.baseline)} {row.baseline_label}".strip()
        ratio = f"{fmt(row.ratio)}x" if row.ratio is not None else ""
        extra = "; ".join(part for part in (row.sample, row.note) if part)
        cells = [row.benchmark, row.figure, fmt(row.value), baseline, ratio, row.unit, extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_prefix(name: str) -> str:
    """An index prefix no user or test uses: `bench-<random>-<name>`."""
    return f"bench-{uuid.uuid4().hex[:8]}-{name}"


def drop_prefix(client: Elasticsearch, prefix: str) -> None:
    """Delete every index and index template of `prefix`, by name (nodes refuse wildcard deletes)."""
    if not prefix.startswith("bench-") and "-bench-" not in prefix:
        raise ValueError(f"refusing to drop indices of a non-benchmark prefix {prefix!r}")
    found = client.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")
    for name in found:
        client.options(ignore_status=404).indices.delete(index=name)
    templates = client.options(ignore_status=404).indices.get_index_template(name=f"{prefix}-*")
    for template in templates.get("index_templates", []) if templates else []:
        client.options(ignore_status=404).indices.delete_index_template(name=template["name"])


def es_cpu_ms(client: Elasticsearch) -> float:
    """CPU time of the Elasticsearch node(s) so far (shared node: others' work is included)."""
    stats = client.nodes.stats(metric="process")
    return float(sum(node["process"]["cpu"]["total_in_millis"] for node in stats["nodes"].values()))


def cpus() -> int:
    return os.cpu_count() or 1


def ensure_node() -> None:
    """Start the local node the way `newsradar run` does (a running one is reused), so a benchmark
    command needs no set-up beforehand; a node that cannot start ends the run with its reason."""
    from newsradar.settings import get_settings
    from stack import esnode

    esnode.start(get_settings(), lambda line: print(line, file=sys.stderr, flush=True))


def reset_peak_rss() -> None:
    """Restart this process's peak-RSS count (Linux ``clear_refs``), so one stage's peak can be read
    in a process that ran others before; a no-op where the kernel does not offer it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """Peak resident memory of this process since the start or the last :func:`reset_peak_rss`."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
