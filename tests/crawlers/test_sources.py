"""The source catalog: loading, validation with located errors, `newsradar sources list|check`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from commands.main import app
from crawlers.catalog import CATALOG, CatalogError, check_catalog, load_catalog, sample_catalog, select
from stack.replay import SAMPLE_SITE, ReplayServer


def _entry(name: str, **fields: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": name,
        "title": name.title(),
        "lang": "en",
        "country": "US",
        "kind": "media",
        "homepage": f"https://{name}.example/",
        "feeds": [f"https://{name}.example/feed.xml"],
        "timezone": "UTC",
        "paywall": "none",
        "enabled": True,
    }
    entry.update(fields)
    return entry


def _write(path: Path, entries: list[object]) -> Path:
    path.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_catalog_loads_with_twelve_media_outlets_per_language() -> None:
    sources = load_catalog(CATALOG)
    media = Counter(s.lang for s in sources if s.kind == "media")
    assert all(media[lang] >= 12 for lang in ("de", "en", "zh"))
    assert any(s.kind == "primary" for s in sources)
    assert len({s.name for s in sources}) == len(sources)
    assert all(s.feeds or s.sitemaps or s.listing_pages for s in sources)


def test_broken_entries_are_reported_with_entry_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "bad.yaml",
        [
            _entry("good"),
            _entry("Bad Name"),
            _entry("badlang", lang="fr"),
            _entry("badurl", feeds=["not a url", "ftp://x.example/feed"]),
            _entry("good"),  # duplicate name
            _entry("stealer", feeds=["https://good.example/feed.xml"]),  # duplicate URL
            _entry("nowhere", feeds=[]),
            _entry("tz", timezone="Mars/Olympus"),
            _entry("typo", feedz=["https://typo.example/"]),
            _entry("nolang", lang=None),
            "just a string",
        ],
    )
    sources, problems = check_catalog(path)
    located = {(p.entry, p.field) for p in problems}
    assert ("sources[1] (Bad Name)", "name") in located
    assert ("sources[2] (badlang)", "lang") in located
    assert ("sources[3] (badurl)", "feeds") in located
    assert ("good", "name") in located
    assert ("stealer", "feeds") in located
    assert ("sources[6] (nowhere)", "(entry)") in located
    assert ("sources[7] (tz)", "timezone") in located
    assert ("sources[8] (typo)", "feedz") in located
    assert ("sources[9] (nolang)", "lang") in located
    assert ("sources[10]", "(entry)") in located
    assert all(p.file == str(path) for p in problems)
    bad_url = next(p for p in problems if p.entry.endswith("(badurl)"))
    assert "not a url" in bad_url.reason and "ftp://" in bad_url.reason
    assert {s.name for s in sources} >= {"good", "stealer"}

    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value) and "timezone" in str(caught.value)


def test_unreadable_catalog_files(tmp_path: Path) -> None:
    assert check_catalog(tmp_path / "missing.yaml")[1][0].reason == "does not exist"
    (tmp_path / "broken.yaml").write_text("sources: [unclosed")
    assert "not valid YAML" in check_catalog(tmp_path / "broken.yaml")[1][0].reason
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert check_catalog(tmp_path / "list.yaml")[1][0].field == "sources"


def test_selection_and_sample_catalog() -> None:
    sources = sample_catalog("http://127.0.0.1:9999", SAMPLE_SITE)
    assert {s.lang for s in sources} == {"de", "en", "zh"} and len(sources) == 6
    assert sources[0].feeds[0].startswith("http://127.0.0.1:9999/")
    assert [s.name for s in select(sources, lang="zh")] == ["zhiku-news", "xinzhi"]
    assert [s.name for s in select(sources, ["techbote"])] == ["techbote"]
    with pytest.raises(CatalogError, match="nope"):
        select(sources, ["nope"])


def test_cli_sources_list_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["sources", "list", "--lang", "de", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) >= 12 and {r["lang"] for r in rows} == {"de"}
    assert {"name", "feeds", "sitemaps", "kind", "timezone"} <= set(rows[0])

    ok = runner.invoke(app, ["sources", "check"])
    assert ok.exit_code == 0 and "0 problems" in ok.stderr

    bad = _write(tmp_path / "bad.yaml", [_entry("one"), _entry("one")])
    failed = runner.invoke(app, ["sources", "check", "--catalog", str(bad), "--json"])
    assert failed.exit_code == 1
    report = json.loads(failed.stdout)
    assert report["problems"] == [
        {"file": str(bad), "entry": "one", "field": "name", "reason": "duplicate name"}
    ]


def test_cli_sources_check_live_against_replay(tmp_path: Path, fixtures_dir: Path) -> None:
    with ReplayServer(fixtures_dir / "skeleton_site") as server:
        catalog = _write(
            tmp_path / "live.yaml",
            [
                _entry("works", feeds=[server.url("feed.xml")], homepage=server.base_url + "/"),
                _entry("gone", feeds=[server.url("missing.xml")], homepage=server.base_url + "/"),
                _entry("notfeed", feeds=[server.url("robots.txt")], homepage=server.base_url + "/"),
            ],
        )
        result = CliRunner().invoke(
            app, ["sources", "check", "--live", "--catalog", str(catalog), "--json", "--timeout", "5"]
        )
        assert server.httpd.hits["/feed.xml"] == 1
    assert result.exit_code == 1, result.output
    live = {item["source"]: item for item in json.loads(result.stdout)["live"]}
    assert live["works"]["ok"] and live["works"]["documents"][0]["entries"] == 2
    assert not live["gone"]["ok"] and live["gone"]["documents"][0]["status"] == 404
    assert not live["notfeed"]["ok"] and live["notfeed"]["documents"][0]["error"]
    assert "FAIL gone" in result.stderr
