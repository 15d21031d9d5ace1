"""The poll schedule on the real crawl state file: hot sources every minute, quiet ones backed off,
failing ones faster, one source per host per run, leases against overlapping runs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawlers.catalog import Source
from crawlers.schedule import Policy, PollSchedule
from crawlers.state import CrawlState

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _source(name: str, host: str) -> Source:
    return Source(name=name, lang="en", feeds=[f"https://{host}/{name}.xml"])


def test_hot_quiet_and_failing_sources(tmp_path: Path) -> None:
    hot, quiet = _source("hot", "a.example"), _source("quiet", "b.example")
    broken = _source("broken", "c.example")
    with CrawlState(tmp_path / "state.sqlite") as state:
        schedule = PollSchedule(state, Policy(min_interval=60, max_interval=600, backoff=1.5, lease=300))
        assert [[s.name for s in g] for g in schedule.due([hot, quiet, broken], T0)] == [
            ["hot"],
            ["quiet"],
            ["broken"],
        ]
        assert schedule.due([hot, quiet, broken], T0 + timedelta(seconds=10)) == []  # leased meanwhile
        schedule.record("hot", 3, now=T0)
        schedule.record("quiet", 0, now=T0)
        schedule.record("broken", 0, failed=True, now=T0)
        assert schedule.get("hot").interval_s == 60  # type: ignore[union-attr]
        assert schedule.get("quiet").interval_s == 90  # type: ignore[union-attr]
        assert schedule.get("broken").interval_s == 135  # type: ignore[union-attr]
        later = T0 + timedelta(seconds=61)
        assert [[s.name for s in g] for g in schedule.due([hot, quiet, broken], later)] == [["hot"]]
        for n in range(1, 20):  # nothing new for a long time: backs off up to the cap
            schedule.record("quiet", 0, now=T0 + timedelta(hours=n))
        assert schedule.get("quiet").interval_s == 600  # type: ignore[union-attr]
        schedule.record("quiet", 1, now=T0 + timedelta(hours=21))  # news again: hot at once
        assert schedule.get("quiet").interval_s == 60  # type: ignore[union-attr]


def test_a_hosts_due_sources_share_one_crawl_and_none_is_polled_twice_a_minute(tmp_path: Path) -> None:
    feeds = [_source(f"desk{n}", "same.example") for n in range(3)]
    other = _source("elsewhere", "other.example")
    with CrawlState(tmp_path / "state.sqlite") as state:
        schedule = PollSchedule(state, Policy(min_interval=60, max_interval=600, backoff=1.5, lease=300))
        polled: list[tuple[int, str]] = []
        for second in range(0, 300, 30):  # the crawl DAG every 30 s: still never twice a minute
            now = T0 + timedelta(seconds=second)
            groups = schedule.due([*feeds, other], now)
            hosts_per_group = [len({s.feeds[0].split("/")[2] for s in group}) for group in groups]
            assert hosts_per_group == [1] * len(groups)
            for group in groups:
                for source in group:
                    polled.append((second, source.name))
                    schedule.record(source.name, 1, now=now)  # always news: as hot as it gets
        for name in ("desk0", "desk1", "desk2", "elsewhere"):
            times = [s for s, n in polled if n == name]
            assert len(times) == 5 and all(b - a >= 60 for a, b in itertools.pairwise(times))
