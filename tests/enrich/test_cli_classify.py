"""`newsradar classify`: JSON lines in, the same objects with lang, event_types, entities out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from enrich.events_model import build_features, load_model

ROOT = Path(__file__).resolve().parents[2]
NEWSRADAR = Path(sys.executable).with_name("newsradar")

RECORDS: list[dict[str, Any]] = [
    {"id": "zh-1", "title": "阿里巴巴发布通义千问新模型", "source": "s1", "extra": {"nested": [1, 2]}},
    {"id": 2, "title": "US tightens export controls on Nvidia H20 chips to China", "lang": "en"},
    {
        "id": "de-3",
        "title": "Italienische Datenschutzbehörde sperrt ChatGPT",
        "snippet": "Die Garante blockiert den Dienst von OpenAI in Italien.",
    },
    {"id": "x", "title": "Nvidia earnings beat estimates", "text": "Revenue grew in the data center unit."},
]


def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NEWSRADAR), "classify", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_classify_file_keeps_fields_and_adds_labels(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n", encoding="utf-8")
    result = run([str(path)])
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(RECORDS)
    for given, got in zip(RECORDS, out, strict=True):
        for key, value in given.items():
            if key != "lang":
                assert got[key] == value  # every input field kept as it was
        assert isinstance(got["event_types"], list) and got["event_types"]
        confidences = [got["event_confidence"][t] for t in got["event_types"]]
        assert confidences == sorted(confidences, reverse=True)
    zh, us, de, other = out
    assert zh["lang"] == "zh" and zh["event_types"][0] == "release"
    assert {"Alibaba", "Qwen"} <= set(zh["entities"])
    assert us["lang"] == "en" and us["event_types"][0] == "restriction" and "Nvidia" in us["entities"]
    assert "lang_hint" not in us
    assert de["lang"] == "de" and de["event_types"][0] == "ban"
    assert "ChatGPT" in de["entities"] and de["event_evidence"]["ban"]
    assert other["event_types"] == ["other"]


def test_classify_stdin_with_bad_lines() -> None:
    lines = [
        json.dumps({"id": 1, "title": "EU-Parlament verabschiedet KI-Verordnung"}),
        "{not json",
        "",
        json.dumps(["a", "list"]),
        json.dumps({"id": 5}),
        json.dumps({"id": 6, "title": "美国将智谱AI列入实体清单", "lang": "de"}),
    ]
    result = run([], stdin="\n".join(lines) + "\n")
    assert result.returncode != 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == [1, 6]  # good lines still processed, in order
    assert out[0]["event_types"][0] == "regulation"
    assert out[1]["lang"] == "zh" and out[1]["lang_hint"] == "de"  # the given hint is kept, not lost
    assert out[1]["event_types"][0] == "restriction" and "Zhipu AI" in out[1]["entities"]
    err = result.stderr
    assert "<stdin>:2: not JSON" in err
    assert "<stdin>:4: expected a JSON object" in err
    assert "<stdin>:5: no 'title'" in err
    assert ":3" not in err  # a blank line is not an error
    assert "3 line(s)" in err


def test_classify_missing_file(tmp_path: Path) -> None:
    result = run([str(tmp_path / "nope.jsonl")])
    assert result.returncode != 0 and "does not exist" in result.stderr


def _labelled_rows() -> list[dict[str, Any]]:
    """Our own headlines, written for this test: enough of each class and language to train on."""
    makers = ["Alibaba", "Baidu", "OpenAI", "Tencent", "DeepSeek", "Zhipu AI"]
    templates = {
        ("en", "release", True): "{m} releases a new open-weight AI model",
        ("de", "release", True): "{m} veröffentlicht neues KI-Sprachmodell",
        ("zh", "release", True): "{m}发布新一代人工智能大模型",
        ("en", "ban", True): "Regulator bans the {m} chatbot on government devices",
        ("de", "ban", True): "Behörde verbietet Chatbot von {m} auf Dienstgeräten",
        ("zh", "ban", True): "监管机构禁止政府设备使用{m}聊天机器人",
        ("en", "restriction", True): "US adds {m} to export control list for AI chips",
        ("de", "restriction", True): "USA setzen {m} wegen KI-Chips auf Exportliste",
        ("zh", "restriction", True): "美国将{m}列入人工智能芯片出口管制清单",
        ("en", "regulation", True): "Lawmakers pass AI law that covers {m} models",
        ("de", "regulation", True): "Parlament beschließt KI-Gesetz, das auch {m} betrifft",
        ("zh", "regulation", True): "新规要求{m}等生成式人工智能服务备案",
        ("en", "other", False): "Local club beats rivals as {m} fans cheer",
        ("de", "other", False): "Stadt verbietet Feuerwerk, {m} Fans feiern trotzdem",
        ("zh", "other", False): "{m}球迷庆祝球队夺冠",
    }
    return [
        {
            "lang": lang,
            "title": template.format(m=maker),
            "event_type": etype,
            "ai_related": ai,
            "entities": [],
        }
        for (lang, etype, ai), template in templates.items()
        for maker in makers
    ]


def test_classify_train_writes_a_loadable_model(tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in _labelled_rows()) + "\n", "utf-8")
    out = tmp_path / "events.npz"
    env_cache = tmp_path / "cache"
    result = subprocess.run(
        [
            str(NEWSRADAR),
            "classify",
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--no-cv",
            "--cache",
            str(env_cache),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "90 labelled headlines" in result.stderr and f"wrote {out}" in result.stdout
    model = load_model(out)
    assert model.meta["trained_on"]["rows"] == 90
    vectors = np.load(next(env_cache.glob("*.npy")))  # the cached e5 vectors, in data order
    preds = model.predict(
        build_features(["Baidu releases a new open-weight AI model"], [""], vectors[1:2], None)
    )
    assert preds[0].event_type == "release" and preds[0].ai_related


def test_classify_train_reports_missing_data(tmp_path: Path) -> None:
    result = run(["train", "--data", str(tmp_path / "nowhere")])
    assert result.returncode == 2 and "no labelled headlines" in result.stderr
