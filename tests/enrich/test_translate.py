"""Translation: the argos backend through the real argostranslate + CTranslate2 code with a tiny model
package built here (random weights: the output is gibberish, the loading, batching and caching are
real), the libretranslate backend against a real HTTP server on 127.0.0.1, and the no-MT fallback."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from enrich import translate
from enrich.translate import (
    CACHED,
    FAILED,
    GLOSSARY,
    SKIPPED_ENGLISH,
    TRANSLATED,
    UNAVAILABLE,
    TranslationCache,
    translate_articles,
)
from newsradar.article import Article
from newsradar.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NEWSRADAR = Path(sys.executable).with_name("newsradar")

CORPUS = [
    "Alibaba veröffentlicht ein neues Sprachmodell namens Qwen.",
    "Die USA verschärfen die Exportkontrollen für KI-Chips von Nvidia.",
    "Kuaishou stellt den Videogenerator Kling vor.",
    "Die Behörde sperrt die App wegen Datenschutzbedenken.",
    "Das Parlament verabschiedet ein Gesetz über künstliche Intelligenz.",
    "The new model is released as open source today.",
    "Regulators approve the law on artificial intelligence.",
    "China restricts access to foreign chatbots.",
]


# --- a tiny Argos package, built with the real libraries -------------------------------------------


def build_argosmodel(out_dir: Path, from_code: str = "de", to_code: str = "en", seed: int = 0) -> Path:
    """A valid .argosmodel: SentencePiece trained on a few sentences, a 1-layer CTranslate2 Transformer
    with random weights, metadata.json — the layout argostranslate's package.py expects."""
    import numpy as np
    import sentencepiece as spm
    from ctranslate2.specs import transformer_spec

    name = f"translate-{from_code}_{to_code}-0_1"
    root = out_dir / "build" / name
    (root / "model").mkdir(parents=True)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4),
        model_writer=proto,
        vocab_size=80,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    (root / "sentencepiece.model").write_bytes(proto.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]

    d_model, d_ff, size = 16, 32, len(vocab)
    rng = np.random.default_rng(seed)
    spec = transformer_spec.TransformerSpec.from_config(1, 2)
    shapes = {
        ("self_attention", "linear_0"): (3 * d_model, d_model),
        ("self_attention", "linear_1"): (d_model, d_model),
        ("attention", "linear_0"): (d_model, d_model),
        ("attention", "linear_1"): (2 * d_model, d_model),
        ("attention", "linear_2"): (d_model, d_model),
        ("ffn", "linear_0"): (d_ff, d_model),
        ("ffn", "linear_1"): (d_model, d_ff),
    }

    def fill(layer: Any, scope: str, value: Any) -> None:
        if value is not None:
            return
        parts = scope.split("/")
        leaf, parent = parts[-1], parts[-2]
        if leaf == "gamma":
            array = np.ones(d_model)
        elif leaf == "beta":
            array = np.zeros(d_model)
        elif parent.startswith("embeddings") or parent == "projection":
            array = rng.normal(0.0, 0.5, (size, d_model))
        else:
            array = rng.normal(0.0, 0.2, shapes[(parts[-3], parent)])
        setattr(layer, leaf, array.astype(np.float32))

    spec._visit(fill)
    # Never emit <unk>, <s> or </s>, so every "translation" is a non-empty string of real pieces.
    bias = np.zeros(size, dtype=np.float32)
    bias[[processor.unk_id(), processor.bos_id(), processor.eos_id()]] = -1e4
    spec.decoder.projection.bias = bias
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.validate()
    spec.save(str(root / "model"))
    metadata = {
        "package_version": "0.1",
        "argos_version": "1.9.0",
        "from_code": from_code,
        "from_name": {"de": "German", "zh": "Chinese"}.get(from_code, from_code),
        "to_code": to_code,
        "to_name": "English",
        "type": "translate",
    }
    (root / "metadata.json").write_text(json.dumps(metadata))
    target = out_dir / f"{name}.argosmodel"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root.parent))
    return target


@pytest.fixture(scope="module")
def argos_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The package installed with `newsradar models install --file` (a real subprocess)."""
    pytest.importorskip("argostranslate")
    base = tmp_path_factory.mktemp("argos")
    package = build_argosmodel(base)
    packages_dir = base / "packages"
    env = {**os.environ, "NEWSRADAR_ARGOS_PACKAGES_DIR": str(packages_dir), "NEWSRADAR_STATE_DIR": str(base)}
    result = subprocess.run(
        [str(NEWSRADAR), "models", "install", "--file", str(package)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "installed de→en" in result.stdout
    return {"base": base, "packages": packages_dir, "env": env, "file": package}


def _articles(titles: Sequence[tuple[str, str]], lead: str = "") -> list[Article]:
    return [
        Article(
            id=f"a{i}",
            url=f"http://x/{i}",
            canonical_url=f"http://x/{i}",
            source="t",
            title=t,
            lang=lang,
            lead=lead,
        )
        for i, (lang, t) in enumerate(titles)
    ]


def test_models_list_shows_installed_package(argos_env: dict[str, Any]) -> None:
    result = subprocess.run(
        [str(NEWSRADAR), "models", "list", "--json"],
        env=argos_env["env"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["from"], r["to"], r["version"]) for r in rows] == [("de", "en", "0.1")]
    assert Path(rows[0]["path"]).parent == argos_env["packages"]
    assert (Path(rows[0]["path"]) / "model" / "model.bin").is_file()


def test_argos_translates_batches_and_caches(argos_env: dict[str, Any]) -> None:
    from enrich.translate_argos import ArgosTranslator

    settings = Settings(
        state_dir=argos_env["base"],
        translation_backend="argos",
        argos_packages_dir=argos_env["packages"],
        translation_cache=argos_env["base"] / "cache-a.sqlite",
        translation_batch_size=3,
    )

    class Recording(ArgosTranslator):
        """The real translator, remembering the size of every batch it was given."""

        calls: list[int]

        def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
            self.calls.append(len(texts))
            out = super().translate(texts, source, target)
            assert len(out) == len(texts)
            return out

    translator = Recording(argos_env["packages"])
    translator.calls = []
    assert translator.model_id("de", "en") is not None
    assert translator.model_id("zh", "en") is None

    titles = [("de", s) for s in CORPUS[:5]] + [
        ("en", "OpenAI releases GPT-5"),
        ("zh", "阿里巴巴发布通义千问新模型"),
    ]
    first = _articles(titles, lead="Das ist der erste Absatz. Er hat zwei Sätze.")
    report = translate_articles(first, settings, translator=translator)
    german = first[:5]
    # 5 distinct titles + 1 shared lead = 6 segments in batches of 3.
    assert translator.calls == [3, 3]
    assert report.segments_translated == 6
    assert all(a.translation_status == TRANSLATED and a.translation_backend == "argos" for a in german)
    assert all(isinstance(a.title_en, str) and a.title_en.strip() for a in german)
    assert all(a.title_en != a.title for a in german)
    assert len({a.title_en for a in german}) == 5  # one output per input, not shifted or merged
    assert all(a.lead_en and a.lead_en == german[0].lead_en for a in german)
    assert first[5].translation_status == SKIPPED_ENGLISH and first[5].title_en == "OpenAI releases GPT-5"
    # No zh→en package: glossary English names, and the status says so.
    assert first[6].translation_status == GLOSSARY
    assert first[6].title_en is not None and "Alibaba" in first[6].title_en and "Qwen" in first[6].title_en

    # Same content again: every segment from the cache, no CTranslate2 call, same output.
    translator.calls = []
    second = _articles(titles, lead="Das ist der erste Absatz. Er hat zwei Sätze.")
    report2 = translate_articles(second, settings, translator=translator)
    assert translator.calls == []
    assert report2.segments_cached == 6 and report2.segments_translated == 0
    assert [a.translation_status for a in second[:5]] == [CACHED] * 5
    assert [a.title_en for a in second] == [a.title_en for a in first]


def test_argos_is_deterministic_and_splits_sentences(argos_env: dict[str, Any]) -> None:
    from enrich.translate_argos import ArgosTranslator, split_sentences

    assert split_sentences("Erster Satz. Zweiter Satz! Dritter?") == [
        "Erster Satz.",
        "Zweiter Satz!",
        "Dritter?",
    ]
    assert split_sentences("第一句。第二句！") == ["第一句。", "第二句！"]
    translator = ArgosTranslator(argos_env["packages"])
    texts = ["Erster Satz. Zweiter Satz.", "", "Kling"]
    one = translator.translate(texts, "de", "en")
    assert one == translator.translate(texts, "de", "en")
    assert one[1] == "" and one[0] and one[2]
    assert one[0] == " ".join(translator.translate(["Erster Satz.", "Zweiter Satz."], "de", "en"))


def test_argos_via_configured_backend_and_cache_file(argos_env: dict[str, Any]) -> None:
    """The settings alone select the backend and the cache file (what the pipeline does)."""
    cache_file = argos_env["base"] / "cache-b.sqlite"
    settings = Settings(
        state_dir=argos_env["base"],
        translation_backend="argos",
        argos_packages_dir=argos_env["packages"],
        translation_cache=cache_file,
    )
    arts = _articles([("de", CORPUS[1])])
    translate_articles(arts, settings)
    assert arts[0].translation_status == TRANSLATED
    assert len(TranslationCache(cache_file)) == 1
    again = _articles([("de", CORPUS[1])])
    translate_articles(again, settings)
    assert again[0].translation_status == CACHED and again[0].title_en == arts[0].title_en


def test_install_rejects_bad_package_files(tmp_path: Path) -> None:
    pytest.importorskip("argostranslate")
    from enrich.translate_argos import ArgosPackageError, check_package_file, parse_pair

    not_zip = tmp_path / "x.argosmodel"
    not_zip.write_text("hello")
    flat = tmp_path / "flat.argosmodel"
    with zipfile.ZipFile(flat, "w") as archive:
        archive.writestr("metadata.json", "{}")
    no_model = tmp_path / "nomodel.argosmodel"
    with zipfile.ZipFile(no_model, "w") as archive:
        archive.writestr("p/metadata.json", json.dumps({"from_code": "de", "to_code": "en"}))
        archive.writestr("p/sentencepiece.model", "")
    for path, message in ((not_zip, "zip"), (flat, "one folder"), (no_model, "model.bin")):
        with pytest.raises(ArgosPackageError, match=message):
            check_package_file(path)
    assert parse_pair("translate-de_en") == ("de", "en") and parse_pair("zh-en") == ("zh", "en")
    with pytest.raises(ArgosPackageError):
        parse_pair("german")

    env = {**os.environ, "NEWSRADAR_ARGOS_PACKAGES_DIR": str(tmp_path / "pk")}
    result = subprocess.run(
        [str(NEWSRADAR), "models", "install", "--file", str(flat)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert "one folder" in result.stderr
    assert not (tmp_path / "pk").exists()  # checked before anything was unpacked


# --- no MT: glossary fallback and one warning ------------------------------------------------------


def test_none_backend_glossary_fallback_and_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    translate.reset_warnings()
    settings = Settings(state_dir=tmp_path, translation_backend="none")
    titles = [
        ("zh", "英伟达H20芯片被美国商务部限制出口"),
        ("de", "Kuaishou stellt Kling 2.0 vor"),
        ("en", "OpenAI releases GPT-5"),
        ("other", "Le nouveau modèle de Mistral"),
    ]
    with caplog.at_level(logging.WARNING, logger="newsradar.translate"):
        first = _articles(titles, lead="可灵是快手的视频模型。")
        translate_articles(first, settings)
        translate_articles(_articles(titles), settings)
    warnings = [r.getMessage() for r in caplog.records if "translation disabled" in r.getMessage()]
    assert len(warnings) == 1 and "none" in warnings[0]
    zh, de, en, other = first
    assert zh.translation_status == GLOSSARY and zh.translation_backend == "none"
    assert zh.title_en is not None and "Nvidia H20" in zh.title_en and "英伟达" not in zh.title_en
    assert zh.lead_en is not None and "Kling" in zh.lead_en
    assert de.translation_status == GLOSSARY and de.title_en == de.title
    assert en.translation_status == SKIPPED_ENGLISH and en.title_en == en.title
    assert other.translation_status == UNAVAILABLE and other.title_en is None
    assert not (tmp_path / "translate").exists()  # no MT, no cache file


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NEWSRADAR_TRANSLATION_BACKEND"):
        translate.get_translator(Settings(state_dir=tmp_path, translation_backend="deepl"))


def test_argos_without_packages_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("argostranslate")
    translate.reset_warnings()
    settings = Settings(
        state_dir=tmp_path, translation_backend="argos", argos_packages_dir=tmp_path / "empty"
    )
    with caplog.at_level(logging.WARNING, logger="newsradar.translate"):
        arts = _articles([("zh", "零一万物发布Yi模型"), ("zh", "可灵上线")])
        translate_articles(arts, settings)
    assert [a.translation_status for a in arts] == [GLOSSARY, GLOSSARY]
    assert arts[0].title_en is not None and "01.AI" in arts[0].title_en
    warnings = [r.getMessage() for r in caplog.records if "translation disabled" in r.getMessage()]
    assert len(warnings) == 1 and "zh→en" in warnings[0] and "models install" in warnings[0]


def test_cache_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = TranslationCache(path)
    key = translate.cache_key("m1", "Hallo")
    cache.put_many([(key, "m1", "Hello")])
    cache.close()
    reopened = TranslationCache(path)
    assert reopened.get_many([key, translate.cache_key("m2", "Hallo")]) == {key: "Hello"}
    assert len(reopened) == 1


# --- libretranslate against a local server ---------------------------------------------------------


class FakeLibreTranslate:
    """A LibreTranslate-compatible ``POST /translate`` on 127.0.0.1 with scripted failures."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, float]] = []  # (status, delay) per request, then 200s
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                status, delay = outer.script.pop(0) if outer.script else (200, 0.0)
                if delay:
                    time.sleep(delay)
                if self.path != "/translate":
                    status = 404
                if status == 200:
                    q = body["q"]
                    out: Any = (
                        [f"[{body['source']}>{body['target']}] {t}" for t in q] if isinstance(q, list) else q
                    )
                    payload = {"translatedText": out}
                else:
                    payload = {"error": f"scripted {status}"}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def libre() -> Iterator[FakeLibreTranslate]:
    server = FakeLibreTranslate()
    yield server
    server.close()


def _libre_settings(tmp_path: Path, url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp_path,
        "translation_backend": "libretranslate",
        "libretranslate_url": url,
        "libretranslate_retries": 2,
        "libretranslate_backoff": 0.01,
        "libretranslate_timeout": 5.0,
        "translation_batch_size": 2,
        **extra,
    }
    return Settings(**values)


def test_libretranslate_batches_with_api_key_from_env(
    tmp_path: Path, libre: FakeLibreTranslate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSRADAR_LIBRETRANSLATE_API_KEY", "s3cret")
    settings = _libre_settings(tmp_path, libre.url)
    arts = _articles([("de", "Titel eins"), ("de", "Titel zwei"), ("zh", "标题三"), ("en", "Title four")])
    report = translate_articles(arts, settings)
    assert [len(r["q"]) for r in libre.requests] == [2, 1]  # de: 2 titles in one batch; zh: 1
    assert {(r["source"], r["target"]) for r in libre.requests} == {("de", "en"), ("zh", "en")}
    assert all(r.get("api_key") == "s3cret" for r in libre.requests)
    assert arts[0].title_en == "[de>en] Titel eins" and arts[1].title_en == "[de>en] Titel zwei"
    assert arts[2].title_en == "[zh>en] 标题三"
    assert [a.translation_status for a in arts] == [TRANSLATED, TRANSLATED, TRANSLATED, SKIPPED_ENGLISH]
    assert all(a.translation_backend == "libretranslate" for a in arts)
    assert report.statuses[TRANSLATED] == 3
    # Second run: from the cache, no request.
    before = len(libre.requests)
    again = _articles([("de", "Titel eins")])
    translate_articles(again, settings)
    assert len(libre.requests) == before and again[0].translation_status == CACHED


def test_libretranslate_retries_429_and_500(tmp_path: Path, libre: FakeLibreTranslate) -> None:
    libre.script = [(429, 0.0), (500, 0.0)]
    arts = _articles([("de", "Ein Titel")])
    translate_articles(arts, _libre_settings(tmp_path, libre.url))
    assert len(libre.requests) == 3
    assert arts[0].translation_status == TRANSLATED and arts[0].title_en == "[de>en] Ein Titel"


def test_libretranslate_gives_up_and_marks_failed(tmp_path: Path, libre: FakeLibreTranslate) -> None:
    libre.script = [(500, 0.0)] * 10
    arts = _articles([("zh", "美国商务部限制英伟达"), ("de", "Ein Titel")])
    report = translate_articles(arts, _libre_settings(tmp_path, libre.url, translation_batch_size=8))
    assert len(libre.requests) == 2 * 3  # two language batches, 1 + 2 retries each
    assert [a.translation_status for a in arts] == [FAILED, FAILED]
    assert arts[0].title_en is not None and "Nvidia" in arts[0].title_en  # glossary fallback
    assert report.errors and "HTTP 500" in report.errors[0] and "3 attempts" in report.errors[0]
    # Not cached: the next run tries again and succeeds.
    libre.script = []
    retry = _articles([("zh", "美国商务部限制英伟达")])
    translate_articles(retry, _libre_settings(tmp_path, libre.url))
    assert retry[0].translation_status == TRANSLATED


def test_libretranslate_client_error_is_not_retried(tmp_path: Path, libre: FakeLibreTranslate) -> None:
    libre.script = [(400, 0.0)]
    arts = _articles([("de", "Ein Titel")])
    report = translate_articles(arts, _libre_settings(tmp_path, libre.url))
    assert len(libre.requests) == 1
    assert arts[0].translation_status == FAILED and "scripted 400" in report.errors[0]


def test_libretranslate_timeout_and_unreachable(tmp_path: Path, libre: FakeLibreTranslate) -> None:
    libre.script = [(200, 1.0)] * 3
    arts = _articles([("de", "Langsam")])
    report = translate_articles(arts, _libre_settings(tmp_path, libre.url, libretranslate_timeout=0.2))
    assert arts[0].translation_status == FAILED and "timed out" in report.errors[0]
    assert len(libre.requests) == 3

    closed = FakeLibreTranslate()
    url = closed.url
    closed.close()  # nothing listens there any more
    arts = _articles([("de", "Niemand da")])
    report = translate_articles(arts, _libre_settings(tmp_path / "u", url))
    assert arts[0].translation_status == FAILED and "cannot reach" in report.errors[0]


def test_libretranslate_full_text(tmp_path: Path, libre: FakeLibreTranslate) -> None:
    settings = _libre_settings(tmp_path, libre.url, translation_full_text=True, translation_batch_size=16)
    art = _articles([("de", "Titel")])[0]
    art.text = "Erster Absatz.\n\nZweiter Absatz."
    translate_articles([art], settings)
    assert art.lead_en == "[de>en] Erster Absatz."  # no lead: the first paragraph stands in
    assert art.text_en == "[de>en] Erster Absatz.\n\n[de>en] Zweiter Absatz."
