"""Language identification: script rules, mixed text, hints, variants, determinism, speed."""

from __future__ import annotations

import time

import pytest

from enrich.language import detect_langdetect, detect_language, normalise_lang


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("OpenAI发布GPT-5，性能大幅提升", "zh"),
        ("欧盟AI Act正式生效", "zh"),
        ("英伟达H20芯片", "zh"),
        ("Alibaba releases Qwen3 family of open-weight models", "en"),
        ("Italienische Datenschutzbehörde sperrt ChatGPT", "de"),
        ("USA verschärfen Exportkontrollen für KI-Chips nach China", "de"),
        ("ChatGPTのリリース、日本でも開始", "other"),
        ("삼성전자 AI 칩 공개", "other"),
        ("Le gouvernement français annonce une nouvelle loi sur l'intelligence artificielle", "other"),
    ],
)
def test_titles(title: str, expected: str) -> None:
    assert detect_language(title) == expected


def test_german_text_quoting_english_stays_german() -> None:
    text = (
        'Der Konzern schreibt in seiner Mitteilung: "We are committed to responsible AI." '
        "Kritiker halten das für eine leere Floskel, denn die Datenschutzbehörde prüft weiterhin."
    )
    assert detect_language("Datenschutz bei KI", text) == "de"


def test_hint_breaks_ties_but_not_clear_evidence() -> None:
    assert detect_language("Nvidia H20", hint="en") == "en"
    assert detect_language("Nvidia H20", hint="de") == "de"
    clear = "The company said on Tuesday that the new model will be available to all users next week."
    assert detect_language(clear, hint="de") == "en"


@pytest.mark.parametrize(
    ("code", "norm"),
    [
        ("zh-CN", "zh"),
        ("zh-tw", "zh"),
        ("zh-Hans", "zh"),
        ("de-AT", "de"),
        ("en_US", "en"),
        ("fr", None),
        (None, None),
    ],
)
def test_normalise_variants(code: str | None, norm: str | None) -> None:
    assert normalise_lang(code) == norm


def test_empty_or_digits_fall_back_to_hint() -> None:
    assert detect_language("", hint="zh-CN") == "zh"
    assert detect_language("2025", hint="de") == "de"
    assert detect_language("") == "other"


def test_langdetect_baseline_is_deterministic_and_restricted() -> None:
    results = {detect_langdetect("阿里云发布通义千问") for _ in range(5)}
    assert results == {"zh"}


def test_fast_enough_for_per_article_use() -> None:
    text = "Die EU-Kommission hat neue Leitlinien zur KI-Verordnung veröffentlicht. " * 40
    detect_language("warm-up", text)
    start = time.perf_counter()
    for _ in range(200):
        detect_language("Neue Regeln für KI-Anbieter", text)
    assert (time.perf_counter() - start) / 200 < 0.01
