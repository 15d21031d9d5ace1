"""Entity catalog matching and the Chinese → English name glossary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enrich.entities import catalog, entity_country, entity_names, find_entities
from enrich.glossary import apply_glossary, glossary

DEVSET = Path(__file__).resolve().parents[1] / "fixtures" / "enrich" / "devset.jsonl"


def names(title: str, text: str = "") -> set[str]:
    return {m.name for m in find_entities(title, text)}


def test_chinese_aliases_and_parents() -> None:
    assert entity_names("阿里巴巴发布通义千问新模型") == ["Alibaba", "Qwen"]
    assert entity_names("快手可灵上线新功能")[:2] == ["Kuaishou", "Kling"]
    assert "Alibaba" in entity_names("Qwen3 tops the open-model leaderboard")  # parent added


def test_longest_alias_wins() -> None:
    assert names("美国商务部对华为实施新的出口管制") == {"US Commerce Department", "Huawei"}
    assert names("阿里巴巴和穆罕默德·阿里") == {"Alibaba"}


@pytest.mark.parametrize(
    "title",
    [
        "Marc-Uwe Kling liest aus neuem Buch",
        "Wang Yi meets his counterpart",
        "Kimi Räikkönen returns",
        "可灵活调整的货币政策",
        "Claude Monet exhibition opens",
        "64字节对齐",
        "Ernie Els wins the Open again",
        "Code released under the MIT licence",
    ],
)
def test_ambiguous_short_aliases_need_context(title: str) -> None:
    assert not names(title) & {"Kling", "Yi", "Kimi", "Claude", "ByteDance", "ERNIE Bot", "MIT"}


def test_weak_aliases_with_context() -> None:
    assert "Kling" in names("Kling refuses prompts about protests")
    assert "Yi" in names("01.AI shows new Yi model")
    assert "Kimi" in names("Moonshot AI updates Kimi chatbot")


def test_latin_boundaries_in_cjk_and_german_genitive() -> None:
    assert names("OpenAI发布GPT-4o") == {"OpenAI", "GPT"}
    assert "Nvidia" in names("Nvidias Umsatz steigt")
    assert "Meta" not in names("Metadata standards")


def test_match_details_and_salience() -> None:
    matches = find_entities("DeepSeek bans", "Nvidia said DeepSeek and Nvidia and Nvidia ...")
    assert matches[0].name == "DeepSeek" and matches[0].in_title and matches[0].count == 2
    assert next(m for m in matches if m.name == "Nvidia").count == 3


def test_catalog_integrity() -> None:
    cat = catalog()
    for entity in cat.entities.values():
        assert entity.parent is None or entity.parent in cat.entities
    assert entity_country("Qwen") == "CN"
    assert {
        "Alibaba",
        "Qwen",
        "Kuaishou",
        "Kling",
        "01.AI",
        "Yi",
        "US Commerce Department",
        "Cyberspace Administration of China",
        "EU AI Office",
        "Garante",
        "Hong Kong",
    } <= set(cat.entities)


def test_glossary() -> None:
    assert apply_glossary("阿里巴巴发布通义千问新模型") == "Alibaba发布Qwen新模型"
    assert apply_glossary("快手可灵拒绝生成") == "Kuaishou Kling拒绝生成"
    assert apply_glossary("英伟达H20芯片") == "Nvidia H20芯片"
    assert apply_glossary("国内大模型") == "国内大模型"  # gloss_skip
    assert apply_glossary("No Chinese here") == "No Chinese here"
    assert glossary()["零一万物"] == "01.AI"


def test_entity_quality_gate() -> None:
    """A regression gate on reviewed golden labels (title + lead, as the pipeline passes them)."""
    rows = [json.loads(line) for line in DEVSET.read_text("utf-8").splitlines() if line.strip()]
    tp = fp = fn = 0
    for row in rows:
        gold = set(row["entities"])
        got = set(entity_names(row["title"], row["text"]))
        tp, fp, fn = tp + len(gold & got), fp + len(got - gold), fn + len(gold - got)
    assert tp / (tp + fp) >= 0.97
    assert tp / (tp + fn) >= 0.97
