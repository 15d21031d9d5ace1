"""Learned event classifier and entity linker: contract tests that need no labelled data.

(Figures on labelled headlines are printed by ``newsradar classify train`` and ``make bench``; the
data is not part of the repository. Throughput lives in ``bench/judgment.py``, not here.)
"""

from __future__ import annotations

import numpy as np
import pytest

from enrich.entities import entity_names
from enrich.events_model import (
    CLASSES,
    MODEL_PATH,
    NgramBatch,
    build_features,
    char_ngram_ids,
    clean_input,
    load_model,
)


def _features(titles: list[str], leads: list[str]) -> object:
    model = load_model()
    rng = np.random.default_rng(0)
    e5 = rng.normal(size=(len(titles), 384)).astype(np.float32)
    e5 /= np.linalg.norm(e5, axis=1, keepdims=True)
    use = None
    if model.uses_usem3:
        use = rng.normal(size=(len(titles), 512)).astype(np.float32)
        use /= np.linalg.norm(use, axis=1, keepdims=True)
    return build_features(titles, leads, e5, use)


def test_model_file_is_plain_arrays() -> None:
    data = np.load(MODEL_PATH, allow_pickle=False)  # raises if anything needs pickle
    assert "meta" in data.files
    assert MODEL_PATH.stat().st_size < 3 * 1024 * 1024


def test_prediction_contract() -> None:
    model = load_model()
    preds = model.predict(_features(["OpenAI veröffentlicht GPT-5", "Böllerverbot in Berlin"], ["", ""]))  # type: ignore[arg-type]
    for pred in preds:
        assert set(pred.event_scores) == set(CLASSES)
        assert abs(sum(pred.event_scores.values()) - 1.0) < 1e-3
        assert pred.event_types[0] == pred.event_type
        assert len(pred.event_types) <= 2
        if not pred.ai_related:
            assert pred.event_type == "other"


def test_hashing_is_deterministic() -> None:
    ids = char_ngram_ids("美国限制英伟达H20芯片出口")
    assert np.array_equal(ids, char_ngram_ids("美国限制英伟达H20芯片出口"))
    batch = NgramBatch.from_texts(["a", "OpenAI launches"])
    assert batch.indptr.tolist()[0] == 0 and len(batch.indptr) == 3


@pytest.mark.parametrize(
    ("title", "text", "message"),
    [
        ("", "", "no .title., .text. or .snippet."),
        ("   ", "\n\n", "no .title., .text. or .snippet."),
        ("12345 !!!", "", "no letters"),
    ],
)
def test_bad_input_gets_a_clear_message(title: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clean_input(title, text)


def test_huge_text_is_cut_to_a_lead() -> None:
    title, lead = clean_input("Title", "Erster Satz. " * 200_000)  # ~2.6 MB
    assert title == "Title" and 0 < len(lead) <= 400 and lead.endswith(".")


def test_mixed_scripts_and_fullwidth() -> None:
    title, _ = clean_input("ＯｐｅｎＡＩ发布GPT-5.2\u200b", "")
    assert title.startswith("OpenAI发布GPT-5.2")
    assert entity_names(title) == ["OpenAI", "GPT-5.2"]


def test_entity_linking_across_scripts_and_versions() -> None:
    assert entity_names("快手推出可灵3.0") == ["Kuaishou", "Kling 3.0"]
    assert entity_names("网信办点名英伟达") == ["Cyberspace Administration of China", "Nvidia"]
    assert set(entity_names("Moonshot AI bringt Kimi K3 heraus")) == {"Moonshot AI", "Kimi K3"}
    assert set(entity_names("通义千问上线新功能")) == {"Qwen", "Alibaba"}
    assert "Claude" not in entity_names("Claude Monet exhibition opens")
    assert entity_names("小狗元宝今天过生日") == []
    assert entity_names("Bayern München gewinnt gegen Dortmund") == []
