"""The web UI and JSON API over real HTTP on 127.0.0.1 against the real node: pages, filters, story
view, escaping of hostile article content, and the admin token that guards saving alert rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch
from ledger import Ledger
from pydantic import SecretStr

from enrich.embed import get_embedder, passage_text
from index.indexer import index_articles
from index.ingest import load_articles
from index.mapping import drop_articles
from newsradar.article import Article
from newsradar.settings import Settings
from web.app import background_server, create_app

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index" / "articles.jsonl"
TOKEN = "test-admin-token-5b1c"


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    return load_articles(FIXTURE)


@pytest.fixture(scope="module")
def web_settings(es: Elasticsearch, settings: Settings, corpus: list[Article]) -> Iterator[Settings]:
    mine = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-web"})
    embedder = get_embedder()
    vectors = embedder.passages([passage_text(a.title, a.lead, a.text) for a in corpus])
    for article, vector in zip(corpus, vectors, strict=True):
        article.embedding = [float(x) for x in vector]
        article.embedding_model = embedder.name
    assert index_articles(es, mine, corpus).indexed == len(corpus)
    yield mine
    drop_articles(es, mine)
    es.indices.delete(index=mine.index_name("rules"), ignore_unavailable=True)


@pytest.fixture(scope="module")
def base(es: Elasticsearch, web_settings: Settings) -> Iterator[str]:
    with background_server(create_app(web_settings, es)) as url:
        yield url


@pytest.fixture
def admin_base(es: Elasticsearch, web_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NEWSRADAR_ADMIN_TOKEN", TOKEN)
    admin = web_settings.model_copy(update={"admin_token": SecretStr(TOKEN)})
    with background_server(create_app(admin, es)) as url:
        yield url


def test_search_page_groups_by_story_with_english_titles(base: str, corpus: list[Article]) -> None:
    page = httpx.get(f"{base}/", params={"q": "US export controls on Nvidia chips"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.count('data-story="story-chips"') == 1  # one entry per story
    assert "+2 more outlets in 3 languages" in html
    assert 'href="/story/story-chips"' in html
    zh = next(a for a in corpus if a.lang == "zh" and a.story_id == "story-chips")
    flat = httpx.get(f"{base}/", params={"q": "export controls", "collapse": "0", "lang": "zh"}).text
    flat = flat.replace("<mark>", "").replace("</mark>", "")
    assert zh.title in flat  # the original title ...
    assert zh.title_en is not None and f"en · argos:</span> {zh.title_en}" in flat  # ... and its translation
    assert 'class="badge lang-zh"' in flat


def test_article_markup_is_escaped(base: str) -> None:
    for params in ({"q": "Robotics fair"}, {"q": "Hanover", "collapse": "0"}):
        html = httpx.get(f"{base}/", params=params).text
        assert "<script>window.__pwned" not in html
        assert "&lt;script&gt;window.__pwned" in html
        assert "<b>Robotics</b>" not in html
        assert "<img src=x" not in html
    story = httpx.get(f"{base}/story/story-robots").text
    assert "<script>window.__pwned" not in story and "&lt;script&gt;" in story
    assert "<img src=x onerror" not in story
    # a query echoed back is escaped as well
    echoed = httpx.get(f"{base}/", params={"q": '"><script>alert(1)</script>'}).text
    assert "<script>alert(1)</script>" not in echoed


def test_filters_and_facet_links(base: str, corpus: list[Article]) -> None:
    html = httpx.get(f"{base}/", params={"q": "", "collapse": "0"}).text
    assert 'data-facet="lang"' in html and 'data-value="zh"' in html
    api = httpx.get(f"{base}/api/search", params=[("lang", "de"), ("event", "ban"), ("collapse", "0")]).json()
    expected = {a.id for a in corpus if a.lang == "de" and "ban" in a.event_types}
    assert {h["id"] for h in api["hits"]} == expected
    assert dict(api["facets"]["lang"]) == {"de": len(expected)}
    paywalled = httpx.get(f"{base}/api/search", params={"paywall": "true", "collapse": "0"}).json()
    assert {h["id"] for h in paywalled["hits"]} == {a.id for a in corpus if a.paywall}
    country = httpx.get(f"{base}/api/search", params={"country": "AT", "collapse": "0", "q": "Kling"}).json()
    assert country["hits"] and {h["country"] for h in country["hits"]} == {"AT"}


def test_api_search_json(base: str) -> None:
    data = httpx.get(f"{base}/api/search", params={"q": "Kling", "limit": 1, "collapse": "0"}).json()
    assert data["mode"] == "hybrid" and data["query"] == "Kling"
    assert len(data["hits"]) == 1 and data["next_cursor"]
    top = data["hits"][0]
    assert top["story_id"] == "story-kling" and top["more_outlets"] == 1
    assert any("<mark>Kling</mark>" in f for fragments in top["highlights"].values() for f in fragments)
    nxt = httpx.get(
        f"{base}/api/search",
        params={"q": "Kling", "limit": 1, "collapse": "0", "cursor": data["next_cursor"]},
    ).json()
    assert not {h["id"] for h in nxt["hits"]} & {h["id"] for h in data["hits"]}
    bad = httpx.get(f"{base}/api/search", params={"q": "x", "cursor": "garbage"})
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
    assert httpx.get(f"{base}/api/search", params={"since": "someday"}).status_code == 400


def test_story_page_and_api(base: str, corpus: list[Article]) -> None:
    members = sorted((a for a in corpus if a.story_id == "story-chips"), key=lambda a: a.published)  # type: ignore[arg-type, return-value]
    data = httpx.get(f"{base}/api/stories/story-chips").json()
    assert [a["id"] for a in data["articles"]] == [a.id for a in members]
    assert data["first_report"]["id"] == members[0].id
    assert [row["lang"] for row in data["timeline"]["languages"]] == [a.lang for a in members]
    assert "embedding" not in data["articles"][0]
    html = httpx.get(f"{base}/story/story-chips").text
    for article in members:
        assert article.title in html
        assert f'data-id="{article.id}"' in html
    assert html.count('class="column"') == 3 and 'id="timeline"' in html
    assert httpx.get(f"{base}/story/nope").status_code == 404
    assert httpx.get(f"{base}/api/stories/nope").status_code == 404


def test_read_only_without_admin_token(base: str) -> None:
    html = httpx.get(f"{base}/", params={"q": "qwen"}).text
    assert "read-only" in html and 'action="/rules"' not in html
    denied = httpx.post(f"{base}/rules", data={"name": "qwen-watch", "owner": "ana", "q": "qwen"})
    assert denied.status_code == 403
    api = httpx.post(
        f"{base}/api/rules",
        json={"name": "x", "owner": "y", "query": "qwen"},
        headers={"X-Admin-Token": TOKEN},
    )
    assert api.status_code == 403  # no token configured: nothing is writable, whatever is presented


def test_token_from_a_config_file_is_not_enough(es: Elasticsearch, web_settings: Settings) -> None:
    configured = web_settings.model_copy(update={"admin_token": SecretStr(TOKEN)})  # not in the environment
    with background_server(create_app(configured, es)) as url:
        response = httpx.post(
            f"{url}/api/rules",
            json={"name": "x", "owner": "y", "query": "q"},
            headers={"X-Admin-Token": TOKEN},
        )
        assert response.status_code == 403


def test_saved_search_creates_an_alert_rule(
    admin_base: str, es: Elasticsearch, web_settings: Settings
) -> None:
    from alerts.store import load_stored_rules

    page = httpx.get(
        f"{admin_base}/", params=[("q", "export controls"), ("lang", "zh"), ("event", "restriction")]
    )
    assert 'action="/rules"' in page.text
    form = {
        "name": "chips-zh",
        "owner": "ana@example.org",
        "q": "export controls",
        "lang": "zh",
        "event": "restriction",
        "email": "ana@example.org",
    }
    wrong = httpx.post(f"{admin_base}/rules", data={**form, "admin_token": "nope"})
    assert wrong.status_code == 403
    saved = httpx.post(f"{admin_base}/rules", data={**form, "admin_token": TOKEN})
    assert saved.status_code == 201 and "chips-zh" in saved.text
    invalid = httpx.post(f"{admin_base}/rules", data={**form, "name": "Bad Name!", "admin_token": TOKEN})
    assert invalid.status_code == 400 and "name" in invalid.json()["detail"]
    nobody = httpx.post(f"{admin_base}/rules", data={**form, "email": "", "admin_token": TOKEN})
    assert nobody.status_code == 400 and "alert nobody" in nobody.json()["detail"]
    # A name a rule file already uses would never run (the file wins): refused, not silently shadowed.
    clash = {**form, "name": "nvidia-ai-chips", "admin_token": TOKEN}
    shadowed = httpx.post(f"{admin_base}/rules", data=clash)
    assert shadowed.status_code == 409 and "rules/nvidia-ai-chips.yaml" in shadowed.json()["detail"]
    via_api = httpx.post(
        f"{admin_base}/api/rules",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "name": "qwen-all",
            "owner": "bo",
            "query": "qwen",
            "languages": ["de"],
            "channels": {"slack": ["china-desk"]},
        },
    )
    assert via_api.status_code == 201
    rules, problems = load_stored_rules(es, web_settings)
    by_name = {rule.name: rule for rule in rules}
    assert not problems and set(by_name) >= {"chips-zh", "qwen-all"}
    chips = by_name["chips-zh"]
    assert chips.query == "export controls" and chips.languages == ["zh"]
    assert chips.event_types == ["restriction"] and chips.channels.email == ["ana@example.org"]


# --- reliability: no 5xx for what a client sends, headers, paywalled text ----------------------------


def _cursor(data: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%%%",
        _cursor([1, 2]),
        _cursor({"o": -5}),
        _cursor({"o": "ten"}),
        _cursor({"o": []}),
        _cursor({"o": 10**12}),
        _cursor({"o": 9995}),
        _cursor({"a": "x"}),
        _cursor({"a": [{"x": 1}]}),
        _cursor({"a": ["not-a-score", 1]}),
        "A" * 5000,
    ],
)
def test_malformed_cursors_are_400(base: str, cursor: str, ledger: Ledger) -> None:
    for params in (
        {"q": "Kling", "cursor": cursor},
        {"q": "Kling", "cursor": cursor, "collapse": "0", "mode": "bm25"},
        {"cursor": cursor, "collapse": "0"},
        {"cursor": cursor, "sort": "recency", "collapse": "0"},
    ):
        response = httpx.get(f"{base}/api/search", params=params)
        ledger.hostile(1, int(response.status_code == 400))
        assert response.status_code == 400, (params, response.text)
        assert response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "\x00\x01",
        "((((((((((((((((((((((((qwen",
        '"' * 301,
        "a" * 5000,
        " ".join(f"w{i}" for i in range(400)),
        "出口管制" * 600,
        "*:* OR title:* AND -(-(-(x)))",
        'entity:"" lang: since:yesterday until:9999999d',
        "\ufffd\U0001f600 emoji",
        "Kling " * 300,
    ],
)
def test_any_query_string_is_answered_without_5xx(base: str, query: str, ledger: Ledger) -> None:
    for mode in ("hybrid", "bm25", "knn"):
        response = httpx.get(f"{base}/api/search", params={"q": query, "mode": mode})
        page = httpx.get(f"{base}/", params={"q": query, "mode": mode})
        ledger.hostile(2, int(response.status_code < 500) + int(page.status_code < 500))
        assert response.status_code < 500, (query[:40], mode, response.text[:200])
        assert page.status_code < 500


def test_security_headers_on_every_response(base: str) -> None:
    for path in (
        "/",
        "/?q=Kling",
        "/api/search?q=Kling",
        "/story/story-chips",
        "/api/stories/story-chips",
        "/healthz",
        "/story/nope",
        "/api/search?cursor=bad",
    ):
        headers = httpx.get(f"{base}{path}").headers
        csp = headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert headers.get("x-frame-options") == "DENY", path


def test_paywalled_text_only_for_admins(base: str, admin_base: str, corpus: list[Article]) -> None:
    paywalled = next(a for a in corpus if a.paywall and a.story_id == "story-chips")
    secret = paywalled.text.split(".")[0][-40:]
    assert secret and secret not in paywalled.lead
    for url in (f"{base}/api/stories/story-chips", f"{base}/story/story-chips"):
        assert secret not in httpx.get(url).text
    story = httpx.get(f"{base}/api/stories/story-chips").json()
    article = next(a for a in story["articles"] if a["id"] == paywalled.id)
    assert "text" not in article and article["title"] == paywalled.title
    query = " ".join(paywalled.text.split()[-6:])
    for mode in ("hybrid", "bm25"):
        api = httpx.get(f"{base}/api/search", params={"q": query, "mode": mode, "collapse": "0"}).json()
        for hit in api["hits"] + api["less_related"]:
            if hit["paywall"]:
                assert "text" not in hit["highlights"] and "text_en" not in hit["highlights"]
        page = httpx.get(f"{base}/", params={"q": query, "mode": mode, "collapse": "0"}).text
        assert secret not in page.replace("<mark>", "").replace("</mark>", "")
    # the admin token shows it
    full = httpx.get(f"{admin_base}/api/stories/story-chips", headers={"X-Admin-Token": TOKEN}).json()
    assert next(a for a in full["articles"] if a["id"] == paywalled.id)["text"] == paywalled.text
    wrong = httpx.get(f"{admin_base}/api/stories/story-chips", headers={"X-Admin-Token": "nope"}).json()
    assert "text" not in next(a for a in wrong["articles"] if a["id"] == paywalled.id)


def test_honest_titles_and_story_headline_in_the_analysts_language(base: str, corpus: list[Article]) -> None:
    de = next(a for a in corpus if a.lang == "de" and a.story_id == "story-chips")
    en = next(a for a in corpus if a.lang == "en" and a.story_id == "story-chips")
    # a German hit for an English query: the story's English headline, the German original once,
    # and no "en:" line (its title_en is a glossary copy, not a translation)
    api = httpx.get(f"{base}/api/search", params={"q": "export controls Nvidia chips", "lang": "de"}).json()
    hit = next(h for h in api["hits"] if h["id"] == de.id)
    assert api["lang"] == "en" and hit["headline"] == en.title and hit["headline_lang"] == "en"
    assert hit["translation"] is None and hit["translation_backend"] is None
    html = httpx.get(f"{base}/", params={"q": "export controls Nvidia chips", "lang": "de"}).text
    html = html.replace("<mark>", "").replace("</mark>", "")
    assert html.count(de.title) == 1 and '<span class="meta">en · ' not in html and en.title in html
