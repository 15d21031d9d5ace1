"""Event classification: triggers, context rules, and a P/R quality gate on the dev set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enrich.classify import classify, event_types

DEVSET = Path(__file__).resolve().parents[1] / "fixtures" / "enrich" / "devset.jsonl"
TYPES = ("release", "ban", "restriction", "regulation", "other")

# Floors set slightly below the measured values (dev: 1.00 everywhere after tuning; heldout, never
# tuned on: release .83/.83, ban .80/.80, restriction 1.00/.43, regulation 1.00/1.00, other .50/1.00).
DEV_FLOOR = 0.95
HELDOUT_FLOORS = {
    "release": (0.8, 0.8),
    "ban": (0.75, 0.75),
    "restriction": (0.95, 0.4),
    "regulation": (0.95, 0.95),
    "other": (0.45, 0.95),
}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Alibaba releases Qwen3 family of open-weight models", "release"),
        ("Kuaishou stellt Videogenerator Kling 2.0 vor", "release"),
        ("腾讯混元文生视频模型宣布开源", "release"),
        ("Italienische Datenschutzbehörde sperrt ChatGPT", "ban"),
        ("可灵拒绝生成涉及天安门的视频", "ban"),
        ("US tightens export controls on Nvidia H20 chips to China", "restriction"),
        ("美国将智谱AI列入实体清单", "restriction"),
        ("EU-Parlament verabschiedet KI-Verordnung", "regulation"),
        ("又有20款大模型通过备案", "regulation"),
        ("Nvidia earnings beat estimates as data center revenue soars", "other"),
    ],
)
def test_top_label(title: str, expected: str) -> None:
    labels = classify(title)
    assert labels[0].type == expected
    assert 0.0 < labels[0].confidence <= 1.0


def test_evidence_and_order() -> None:
    labels = classify("OpenAI launches GPT-5 for ChatGPT Plus subscribers")
    assert labels[0].type == "release" and "launch" in labels[0].evidence
    confidences = [label.confidence for label in labels]
    assert confidences == sorted(confidences, reverse=True)


def test_negation_lowers_ban() -> None:
    assert event_types("Huawei denies plans to ban foreign AI apps") == ["other"]
    assert event_types("华为否认将封禁海外应用的传闻") == ["other"]
    assert "ban" in event_types("Huawei to ban foreign AI apps")


def test_export_context_turns_ban_into_restriction() -> None:
    types = event_types("US bans Nvidia chip sales to China")
    assert types[0] == "restriction" and "ban" not in types


def test_access_block_actor_decides() -> None:
    assert event_types("OpenAI to block API access from China") == ["restriction"]
    assert (
        event_types("", "Die italienische Datenschutzbehörde hat den Zugang zu DeepSeek gesperrt.")[0]
        == "ban"
    )


def test_negative_triggers() -> None:
    assert "release" not in event_types("国家网信办发布生成式人工智能服务管理暂行办法")
    assert "release" not in event_types("European Commission publishes code of practice for AI models")


def test_title_outweighs_text() -> None:
    text = "In other news, a court upheld a ban on street vendors downtown. " * 1
    assert event_types("Mistral AI launches new model", text)[0] == "release"
    in_text = classify("Quarterly results", "The chipmaker mentioned a ban once.")[0]
    in_title = classify("Chipmaker mentions a ban")[0]
    assert in_text.type == in_title.type == "ban"
    assert in_text.confidence < in_title.confidence


def _scores(split: str) -> dict[str, tuple[float, float]]:
    rows = [json.loads(line) for line in DEVSET.read_text("utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == split]
    out = {}
    for t in TYPES:
        tp = fp = fn = 0
        for r in rows:
            gold, got = t in r["event_types"], t in event_types(r["title"], r["text"])
            tp, fp, fn = tp + (gold and got), fp + (got and not gold), fn + (gold and not got)
        out[t] = (tp / max(1, tp + fp), tp / max(1, tp + fn))
    return out


def test_devset_is_balanced_and_labelled() -> None:
    rows = [json.loads(line) for line in DEVSET.read_text("utf-8").splitlines() if line.strip()]
    assert len(rows) >= 150
    for lang in ("de", "en", "zh"):
        assert sum(r["lang"] == lang for r in rows) >= 45
    assert all(set(r["event_types"]) <= set(TYPES) and r["event_types"] for r in rows)


def test_quality_gate_dev() -> None:
    for t, (p, r) in _scores("dev").items():
        assert p >= DEV_FLOOR and r >= DEV_FLOOR, (t, p, r)


def test_quality_gate_heldout() -> None:
    for t, (p, r) in _scores("heldout").items():
        floor_p, floor_r = HELDOUT_FLOORS[t]
        assert p >= floor_p and r >= floor_r, (t, p, r)
