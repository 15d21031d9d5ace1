"""The analyst web UI and its JSON API: search, facets, stories side by side, saved searches.

Server-rendered (Jinja2 with autoescaping on for every template): article titles and texts come
from the open web, so nothing from the index is ever inserted unescaped — highlights mark matches
with private-use characters that are turned into `<mark>` only after escaping.

Read-only unless `NEWSRADAR_ADMIN_TOKEN` is set in the environment; writes (saving a search as an
alert rule) then need that token (form field, `X-Admin-Token` header or `Authorization: Bearer`).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from elasticsearch import Elasticsearch
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError

from enrich.embed import Embedder
from index.search import (
    FACETS,
    HL_END,
    HL_START,
    Hit,
    SearchRequest,
    SearchResult,
    get_story,
    search_articles,
)
from newsradar.dates import parse_since
from newsradar.settings import Settings, get_settings

TEMPLATES = Path(__file__).with_name("templates")
LANG_NAMES = {"de": "Deutsch", "en": "English", "zh": "中文", "other": "other"}
FILTER_PARAMS = ("lang", "source", "country", "event", "entity")


def highlight(text: str | None) -> Markup:
    """Escape first, then turn the highlight marks into <mark>: matches show, markup never runs."""
    safe = str(escape(text or ""))
    return Markup(safe.replace(HL_START, "<mark>").replace(HL_END, "</mark>"))


def safe_url(url: str | None) -> str:
    """Only http(s) links leave the page: a `javascript:` URL in a crawled record must not run."""
    return url if url and url.lower().startswith(("http://", "https://")) else "#"


def strip_marks(text: str | None) -> str:
    return (text or "").replace(HL_START, "").replace(HL_END, "")


SECURITY_HEADERS = {
    # Scripts and styles come only from this server (the page's own inline style block included);
    # no page may frame the UI (clickjacking), and no response is sniffed into another type.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
PAYWALLED_FIELDS = ("text", "text_en")  # full text of a paywalled article: admins only


def without_paywalled_text(article: dict[str, Any]) -> dict[str, Any]:
    """An article as an anonymous reader may see it: no full text when it is paywalled."""
    if not article.get("paywall"):
        return article
    return {k: v for k, v in article.items() if k not in PAYWALLED_FIELDS}


def admin_token(settings: Settings) -> str | None:
    """The token, only when it comes from the environment (a token in a config file is ignored)."""
    configured = settings.admin_token.get_secret_value() if settings.admin_token else None
    if configured and os.environ.get("NEWSRADAR_ADMIN_TOKEN") == configured:
        return configured
    return None


class Params:
    """The search parameters of one request, shared by the page, the API and the rule form."""

    def __init__(
        self,
        q: str = "",
        lang: list[str] | None = None,
        source: list[str] | None = None,
        country: list[str] | None = None,
        event: list[str] | None = None,
        entity: list[str] | None = None,
        since: str = "",
        until: str = "",
        paywall: str = "",
        sort: str = "relevance",
        collapse: str = "1",
        cursor: str = "",
        limit: int = 20,
        mode: str = "hybrid",
    ) -> None:
        self.q = q[:2000]
        self.values: dict[str, list[str]] = {
            "lang": [v for v in lang or [] if v],
            "source": [v for v in source or [] if v],
            "country": [v for v in country or [] if v],
            "event": [v for v in event or [] if v],
            "entity": [v for v in entity or [] if v],
        }
        self.since, self.until, self.paywall = since, until, paywall
        self.sort = sort if sort in ("relevance", "recency") else "relevance"
        self.collapse = collapse != "0"
        self.cursor = cursor
        self.limit = max(1, min(limit, 100))
        self.mode = mode if mode in ("hybrid", "bm25", "knn") else "hybrid"

    def request(self, facets: bool = True) -> SearchRequest:
        try:
            since = parse_since(self.since) if self.since else None
            until = parse_since(self.until) if self.until else None
        except ValueError as error:
            raise HTTPException(400, str(error)) from error
        return SearchRequest(
            query=self.q,
            langs=self.values["lang"],
            sources=self.values["source"],
            countries=self.values["country"],
            event_types=self.values["event"],
            entities=self.values["entity"],
            since=since,
            until=until,
            paywall={"true": True, "false": False}.get(self.paywall),
            collapse=self.collapse,
            sort=self.sort,  # type: ignore[arg-type]
            limit=self.limit,
            cursor=self.cursor or None,
            facets=facets,
            mode=self.mode,  # type: ignore[arg-type]
        )

    def pairs(self, **changes: Any) -> list[tuple[str, str]]:
        state: dict[str, Any] = {
            "q": self.q,
            **{k: list(v) for k, v in self.values.items()},
            "since": self.since,
            "until": self.until,
            "paywall": self.paywall,
            "sort": self.sort,
            "collapse": "1" if self.collapse else "0",
        }
        state.update(changes)
        out: list[tuple[str, str]] = []
        for key, value in state.items():
            for item in value if isinstance(value, list) else [value]:
                if item not in ("", None):
                    out.append((key, str(item)))
        return out

    def url(self, **changes: Any) -> str:
        return "/?" + urlencode(self.pairs(**changes))

    def toggle(self, name: str, value: str) -> str:
        """The URL with one facet value added, or removed when already active (new search: no cursor)."""
        current = list(self.values.get(name, []))
        if name == "paywall":
            return self.url(paywall="" if self.paywall == value else value)
        if value in current:
            current.remove(value)
        else:
            current.append(value)
        return self.url(**{name: current})


def read_params(request: Request) -> Params:
    """Search parameters from the query string (filters repeat: `?lang=de&lang=zh`)."""
    qp = request.query_params
    try:
        limit = int(qp.get("limit", "20"))
    except ValueError:
        raise HTTPException(400, "limit must be a number") from None
    return Params(
        q=qp.get("q", ""),
        lang=qp.getlist("lang"),
        source=qp.getlist("source"),
        country=qp.getlist("country"),
        event=qp.getlist("event"),
        entity=qp.getlist("entity"),
        since=qp.get("since", ""),
        until=qp.get("until", ""),
        paywall=qp.get("paywall", ""),
        sort=qp.get("sort", "relevance"),
        collapse=qp.get("collapse", "1"),
        cursor=qp.get("cursor", ""),
        limit=limit,
        mode=qp.get("mode", "hybrid"),
    )


def _hit_json(hit: Hit, full_text: bool = False) -> dict[str, Any]:
    data = hit.as_json()
    marks = {
        k: v for k, v in hit.highlights.items() if full_text or not hit.paywall or k not in PAYWALLED_FIELDS
    }
    data.update(
        {
            "lead": hit.lead,
            "lead_en": hit.lead_en,
            "paywall": hit.paywall,
            "story_sources": hit.story_sources,
            "more_outlets": hit.more_outlets,
            "more_articles": hit.more_articles,
            "highlights": {k: [str(highlight(f)) for f in v] for k, v in marks.items()},
            "translation": hit.translation,
            "translation_backend": hit.translation_backend if hit.translation else None,
            "headline": hit.headline,
            "headline_lang": hit.headline_lang,
        }
    )
    return data


def _groups(hits: list[Hit]) -> list[tuple[str, list[Hit]]]:
    """Hits grouped by story, in the order each story first appears."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.story_id or hit.id, []).append(hit)
    return list(groups.items())


def create_app(
    settings: Settings | None = None,
    client: Elasticsearch | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    if client is None:
        from index.client import get_client

        client = get_client(settings)
    es: Elasticsearch = client
    app = FastAPI(title="newsradar", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["hl"] = highlight
    env.filters["plain"] = strip_marks
    env.filters["safe_url"] = safe_url
    env.globals["LANG_NAMES"] = LANG_NAMES
    templates = Jinja2Templates(env=env)
    loaded: dict[str, Embedder | None] = {}

    def query_embedder() -> Embedder | None:
        if embedder is not None:
            return embedder
        if "e" not in loaded:
            from enrich.embed import embedder_for

            try:
                loaded["e"] = embedder_for(settings)
            except Exception:  # no model here: BM25 still answers
                loaded["e"] = None
        return loaded["e"]

    def run_search(params: Params) -> SearchResult:
        try:
            return search_articles(es, settings, params.request(), query_embedder())
        except ValueError as error:
            raise HTTPException(400, str(error)) from error

    def is_admin(request: Request) -> bool:
        """Whether the request presents the admin token (paywalled full text is for admins only)."""
        token = admin_token(settings)
        presented = presented_token(request)
        return bool(token and presented and hmac.compare_digest(presented.encode(), token.encode()))

    def check_token(presented: str | None) -> None:
        token = admin_token(settings)
        if token is None:
            raise HTTPException(403, "read-only: saving needs NEWSRADAR_ADMIN_TOKEN set for the server")
        if not presented or not hmac.compare_digest(presented.encode(), token.encode()):
            raise HTTPException(403, "wrong or missing admin token")

    def presented_token(request: Request, form_value: str = "") -> str | None:
        if form_value:
            return form_value
        header = request.headers.get("x-admin-token")
        if header:
            return header
        auth = request.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    @app.get("/", response_class=HTMLResponse)
    def page_search(request: Request) -> Response:
        params = read_params(request)
        result = run_search(params)
        if not is_admin(request):
            for hit in [*result.hits, *result.less_related]:
                if hit.paywall:
                    hit.highlights = {k: v for k, v in hit.highlights.items() if k not in PAYWALLED_FIELDS}
        return templates.TemplateResponse(
            request,
            "search.html",
            {
                "p": params,
                "result": result,
                "groups": _groups(result.hits),
                "less_related": result.less_related,
                "facet_names": list(FACETS),
                "writable": admin_token(settings) is not None,
            },
        )

    def story_for(request: Request, story_id: str) -> dict[str, Any]:
        story = get_story(es, settings, story_id)
        if story is None:
            raise HTTPException(404, f"no story {story_id!r}")
        if not is_admin(request):
            story["articles"] = [without_paywalled_text(a) for a in story["articles"]]
        return story

    @app.get("/story/{story_id}", response_class=HTMLResponse)
    def page_story(request: Request, story_id: str) -> Response:
        story = story_for(request, story_id)
        columns: dict[str, list[dict[str, Any]]] = {}
        for article in story["articles"]:
            columns.setdefault(article.get("lang") or "other", []).append(article)
        order = [lang for lang in ("en", "de", "zh", "other") if lang in columns]
        return templates.TemplateResponse(
            request, "story.html", {"story": story, "columns": [(lang, columns[lang]) for lang in order]}
        )

    @app.get("/api/search")
    def api_search(request: Request) -> JSONResponse:
        params = read_params(request)
        result = run_search(params)
        full_text = is_admin(request)
        return JSONResponse(
            {
                "query": result.query,
                "mode": result.mode,
                "warnings": result.warnings,
                "total": result.total,
                "total_exact": result.total_exact,
                "next_cursor": result.next_cursor,
                "lang": result.lang,
                "hits": [_hit_json(hit, full_text) for hit in result.hits],
                "less_related": [_hit_json(hit, full_text) for hit in result.less_related],
                "facets": {name: [[k, n] for k, n in values] for name, values in result.facets.items()},
            }
        )

    @app.get("/api/stories/{story_id}")
    def api_story(request: Request, story_id: str) -> JSONResponse:
        return JSONResponse(story_for(request, story_id))

    def rule_from(data: dict[str, Any]) -> Any:
        from alerts.rules import Rule

        try:
            return Rule.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in error.errors()
            )
            raise HTTPException(400, f"invalid rule: {problems}") from error

    def store(rule: Any) -> None:
        try:
            from alerts.store import RuleConflict, save_rule
        except ImportError as error:
            raise HTTPException(503, "alert rules cannot be stored on this installation") from error
        try:
            save_rule(es, settings, rule)
        except RuleConflict as error:
            raise HTTPException(409, str(error)) from error

    @app.post("/rules", response_class=HTMLResponse)
    def save_search(
        request: Request,
        name: Annotated[str, Form()],
        owner: Annotated[str, Form()],
        q: Annotated[str, Form()] = "",
        email: Annotated[str, Form()] = "",
        admin_token_field: Annotated[str, Form(alias="admin_token")] = "",
        lang: Annotated[list[str] | None, Form()] = None,
        event: Annotated[list[str] | None, Form()] = None,
        entity: Annotated[list[str] | None, Form()] = None,
        source: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        check_token(presented_token(request, admin_token_field))
        rule = rule_from(
            {
                "name": name.strip(),
                "owner": owner.strip(),
                "query": q,
                "languages": lang or [],
                "event_types": event or [],
                "entities": entity or [],
                "sources": source or [],
                "channels": {"email": [a.strip() for a in email.split(",") if a.strip()]},
            }
        )
        store(rule)
        return templates.TemplateResponse(request, "saved.html", {"rule": rule}, status_code=201)

    @app.post("/api/rules")
    async def api_save_rule(request: Request) -> JSONResponse:
        check_token(presented_token(request))
        try:
            data = await request.json()
        except ValueError as error:
            raise HTTPException(400, "body must be a JSON rule") from error
        if not isinstance(data, dict):
            raise HTTPException(400, "body must be a JSON object")
        rule = rule_from(data)
        store(rule)
        return JSONResponse(rule.model_dump(mode="json"), status_code=201)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextmanager
def background_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a thread on a real socket (port 0: any free one); yields the base URL.
    For tests and scripts that drive the UI over HTTP."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
