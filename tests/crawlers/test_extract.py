"""Unit tests for crawlers.extract / crawlers.charset on small hand-written pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawlers.charset import decode_html, normalise_charset
from crawlers.extract import Extraction, clean_title, extract
from newsradar.dates import parse_published as parse_date

ZH_BODY = (
    "国务院新闻办公室今天举行发布会，介绍人工智能产业发展情况。"
    "有关部门负责人表示，将进一步完善生成式人工智能服务管理办法，加强安全评估和算法备案工作。"
    "会上还公布了一批大模型应用示范项目，涉及教育、医疗、交通和制造等多个领域，"
    "各地政府要积极推动技术创新与产业升级，同时保护个人信息和数据安全。"
)

EN_PARAS = [
    "The European Union has formally adopted new rules that restrict how companies may deploy "
    "general-purpose artificial intelligence models in high-risk settings such as hiring.",
    "Officials said the regulation, which was negotiated for more than two years, would be phased in "
    "gradually so that smaller developers have time to adapt their systems and documentation.",
    "Critics argued that the text still leaves important questions open, in particular how open-source "
    "models will be treated and which national authorities are responsible for enforcement.",
]


def _zh_page(charset_decl: str | None, *, with_date_meta: bool = False) -> str:
    meta = (
        f'<meta http-equiv="Content-Type" content="text/html; charset={charset_decl}">'
        if charset_decl
        else ""
    )
    date_meta = '<meta name="pubdate" content="2024-03-01T08:00:00+08:00">' if with_date_meta else ""
    paras = "".join(f"<p>{ZH_BODY}</p>" for _ in range(3))
    return (
        f"<html><head>{meta}{date_meta}<title>人工智能新规发布-新华网</title></head><body>"
        '<div class="nav"><a href="/">首页</a> <a href="/tech">科技</a></div>'
        '<h1>人工智能新规发布</h1><div class="info">2005年1月2日 09:07 来源：新华网</div>'
        f'<div id="content">{paras}</div><div class="footer">版权所有</div></body></html>'
    )


def _en_page() -> str:
    body = "".join(f"<p>{p}</p>" for p in EN_PARAS)
    return f"""<!DOCTYPE html><html lang="en-GB"><head>
<title>EU adopts AI restrictions | Example News</title>
<meta property="og:title" content="EU adopts AI restrictions - Example News">
<meta property="og:site_name" content="Example News">
<meta property="og:description" content="Brussels tightens rules for general-purpose AI models.">
<meta property="og:image" content="/img/eu.jpg">
<link rel="canonical" href="/2024/05/21/eu-ai-rules">
<script type="application/ld+json">{{"@context":"https://schema.org","@graph":[
  {{"@type":"WebSite","name":"Example News"}},
  {{"@type":"NewsArticle","headline":"EU adopts AI restrictions","datePublished":"2024-05-21T09:30:00+02:00",
    "author":[{{"@type":"Person","name":"Jane Doe"}},{{"@type":"Person","name":"John Roe"}}],
    "isAccessibleForFree":"False"}}]}}</script>
</head><body><header><a href="/">Home</a></header><article><h1>EU adopts AI restrictions</h1>{body}</article>
<footer>© Example News</footer></body></html>"""


# --------------------------------------------------------------------------------------- charset


@pytest.mark.parametrize("codec", ["gbk", "gb18030"])
def test_gbk_without_declaration_is_detected(codec: str) -> None:
    raw = _zh_page(None).encode(codec)
    text, enc = decode_html(raw)
    assert enc == "gb18030"
    assert "人工智能产业发展" in text


def test_lying_meta_charset_is_overruled() -> None:
    # Page claims UTF-8 but is GBK: strict UTF-8 fails, the CJK check picks GB18030.
    raw = _zh_page("utf-8").encode("gbk")
    text, enc = decode_html(raw)
    assert enc == "gb18030"
    assert "国务院新闻办公室" in text


def test_latin1_claim_on_gbk_bytes_is_overruled() -> None:
    raw = _zh_page("iso-8859-1").encode("gbk")
    text, enc = decode_html(raw)
    assert enc == "gb18030"
    assert "国务院" in text


def test_gb2312_claim_on_utf8_bytes_keeps_utf8() -> None:
    raw = _zh_page("gb2312").encode("utf-8")
    text, enc = decode_html(raw)
    assert enc == "utf-8"
    assert "国务院" in text


def test_big5_page_decodes() -> None:
    sentence = "國務院新聞辦公室今天舉行發布會，介紹人工智慧產業發展情況。"
    trad = "<html><head><meta charset=big5></head><body><p>" + sentence * 5
    text, enc = decode_html((trad + "</p></body></html>").encode("big5"))
    assert enc == "big5hkscs"
    assert "國務院新聞辦公室" in text


def test_big5_bytes_without_declaration() -> None:
    sentence = "國務院新聞辦公室今天舉行發布會，介紹人工智慧產業發展情況，有關部門負責人表示將加強管理。"
    trad = "<p>" + sentence * 5 + "</p>"
    text, enc = decode_html(trad.encode("big5"))
    assert enc == "big5hkscs"
    assert "發布會" in text


def test_latin1_german_page_without_declaration() -> None:
    page = "<p>Die Bundesregierung prüft ein Verbot für KI-Überwachung; Datenschützer äußern Bedenken.</p>"
    text, enc = decode_html((page * 5).encode("latin-1"))
    assert enc in {"cp1252", "iso8859_1", "latin-1"}
    assert "prüft ein Verbot für KI-Überwachung" in text


def test_declared_latin1_with_windows_quotes_uses_cp1252() -> None:
    raw = '<meta charset="iso-8859-1"><p>\u201eKI\u201c ist schön</p>'.encode("cp1252")
    text, enc = decode_html(raw)
    assert enc == "cp1252"
    assert "\u201eKI\u201c ist schön" in text


def test_http_declared_charset_wins_when_consistent() -> None:
    raw = "<p>Größere Änderungen</p>".encode("cp1252")
    text, enc = decode_html(raw, declared="windows-1252")
    assert (text, enc) == ("<p>Größere Änderungen</p>", "cp1252")


def test_utf8_bom_and_empty_body() -> None:
    assert decode_html(b"\xef\xbb\xbf<p>\xc3\xa4</p>") == ("<p>ä</p>", "utf-8")
    assert decode_html(b"") == ("", "utf-8")


def test_normalise_charset_widens_legacy_labels() -> None:
    assert normalise_charset("GB2312") == "gb18030"
    assert normalise_charset("x-gbk") == "gb18030"
    assert normalise_charset("ISO-8859-1") == "cp1252"
    assert normalise_charset("no-such-charset") is None


# ------------------------------------------------------------------------------------------ titles


@pytest.mark.parametrize(
    ("raw", "sites", "expected"),
    [
        ("KI-Gesetz beschlossen – DW – 30.01.2024", ["dw"], "KI-Gesetz beschlossen"),
        ("人工智能新规发布-新华网", [], "人工智能新规发布"),
        ("人工智能新规发布_新浪科技_新浪网", ["sina"], "人工智能新规发布"),
        ("OpenAI stellt GPT-5 vor | heise online", ["heise online"], "OpenAI stellt GPT-5 vor"),
        ("Fury - Usyk: Der Kampf des Jahres", ["example"], "Fury - Usyk: Der Kampf des Jahres"),
        ("Example News | Ban on facial recognition", ["example news"], "Ban on facial recognition"),
        ("A headline * The Gateway * by Jane Roe", ["gateway"], "A headline"),
    ],
)
def test_clean_title(raw: str, sites: list[str], expected: str) -> None:
    assert clean_title(raw, sites) == expected


# ------------------------------------------------------------------------------------------- dates


def test_parse_date_variants() -> None:
    assert parse_date("2024-05-21T09:30:00Z") == datetime(2024, 5, 21, 9, 30, tzinfo=UTC)
    assert parse_date("2003-5-29 09:07") == datetime(2003, 5, 29, 9, 7, tzinfo=UTC)
    assert parse_date("2005年1月2日 09:07") == datetime(2005, 1, 2, 9, 7, tzinfo=UTC)
    shanghai = parse_date("2005年1月2日 09:07", "Asia/Shanghai")
    assert shanghai is not None and shanghai.utcoffset() == timedelta(hours=8)
    assert parse_date("not a date") is None
    assert parse_date("1850-01-01") is None


# -------------------------------------------------------------------------------------- extraction


def test_english_page_uses_json_ld_and_meta() -> None:
    ex = extract(_en_page(), "https://news.example.com/world/eu-ai")
    assert ex.title == "EU adopts AI restrictions"
    assert ex.published == datetime(2024, 5, 21, 7, 30, tzinfo=UTC)
    assert ex.published is not None and ex.published.utcoffset() == timedelta(hours=2)
    assert ex.published_source == "json-ld"
    assert ex.authors == ["Jane Doe", "John Roe"]
    assert ex.paywall is True
    assert ex.lang_hint == "en"
    assert ex.canonical_url == "https://news.example.com/2024/05/21/eu-ai-rules"
    assert ex.image == "https://news.example.com/img/eu.jpg"
    assert ex.lead == "Brussels tightens rules for general-purpose AI models."
    assert "phased in gradually" in ex.text
    assert "\n\n" in ex.text and "© Example News" not in ex.text


def test_chinese_gbk_page_end_to_end() -> None:
    raw = _zh_page("gb2312").encode("gbk")
    ex = extract(raw, "http://www.example.cn/tech/ai.htm", timezone="Asia/Shanghai")
    assert ex.encoding == "gb18030"
    assert ex.title == "人工智能新规发布"
    assert "生成式人工智能服务管理办法" in ex.text
    assert "版权所有" not in ex.text
    assert ex.published is not None
    assert (ex.published.year, ex.published.month, ex.published.day, ex.published.hour) == (2005, 1, 2, 9)
    assert ex.published.utcoffset() == timedelta(hours=8)
    assert ex.published_source == "text"


def test_chinese_meta_date_beats_text_date() -> None:
    ex = extract(_zh_page("utf-8", with_date_meta=True).encode("utf-8"))
    assert ex.published is not None and ex.published.date().isoformat() == "2024-03-01"
    assert ex.published_source == "meta"


def test_naive_meta_date_gets_source_timezone() -> None:
    page = (
        _en_page()
        .replace('"datePublished":"2024-05-21T09:30:00+02:00",', "")
        .replace("<head>", '<head><meta property="article:published_time" content="2024-05-22 10:00">', 1)
    )
    ex = extract(page, timezone="Europe/Berlin")
    assert ex.published_source == "meta"
    assert ex.published is not None and ex.published.utcoffset() == timedelta(hours=2)
    ex_utc = extract(page)
    assert ex_utc.published is not None and ex_utc.published.tzinfo == UTC


def test_url_date_used_when_page_has_none() -> None:
    page = "<html><body><h1>Hallo</h1>" + "".join(f"<p>{p}</p>" for p in EN_PARAS) + "</body></html>"
    ex = extract(page, "https://example.org/2023/11/02/some-story")
    assert ex.published is not None and ex.published.date().isoformat() == "2023-11-02"
    assert ex.published_source == "url"


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"   ",
        "",
        b"\x00\xff\xfe\x00garbage",
        "<html><body></body></html>",
        "<<<>>>",
        b"<?xml version='1.0' encoding='utf-8'?>",
        "<html><head><script type='application/ld+json'>{broken</script></head><body><p>x</p></body></html>",
    ],
)
def test_malformed_input_never_raises(bad: bytes | str) -> None:
    ex = extract(bad)
    assert isinstance(ex, Extraction)
    assert ex.published_source in {"json-ld", "meta", "feed", "url", "text", "unknown"}
    assert len(ex.text) < 50


def test_huge_input_is_capped() -> None:
    filler = "<div>" + ("<span>x</span>" * 400_000) + "</div>"
    page = _en_page().replace("<footer>", filler + "<footer>")
    ex = extract(page.encode("utf-8"))
    assert isinstance(ex, Extraction)
    assert ex.title == "EU adopts AI restrictions"


def test_lead_falls_back_to_first_paragraph_and_is_capped() -> None:
    long_para = "Regulators " + "discussed the rules at length and " * 30 + "agreed."
    paras = "".join(f"<p>{p}</p>" for p in (long_para, EN_PARAS[0], EN_PARAS[1]))
    page = f"<html><body><article><h1>Regulators meet</h1>{paras}</article></body></html>"
    ex = extract(page)
    assert ex.lead.startswith("Regulators discussed")
    assert len(ex.lead) <= 401
