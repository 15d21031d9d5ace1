"""The enrichment stages, in order: the one registry the process DAG, ``ingest``, the commands and the
benchmarks all build from.

language → translate → embed → classify → dedupe

Order matters: translation needs the language, classification and story assignment need the vector
and the language. Each stage fills its own fields of the ``Article`` records in place and reuses what
an earlier stage computed (the vector is made once, by ``embed``); a stage never recomputes another
stage's output. The process DAG runs them all in its one ``enrich`` task, so a new stage is one entry
here.

Heavy libraries are imported inside the stage functions: DAG files import this module at parse time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from newsradar.article import Article
from newsradar.settings import Settings

if TYPE_CHECKING:
    from enrich.dedupe import Record, StoryState
    from enrich.embed import Embedder
    from enrich.translator import Translator

log = logging.getLogger("newsradar.enrich")


class StageError(RuntimeError):
    """A stage cannot run as configured (say, story assignment without a story state)."""


@dataclass
class StageContext:
    """What the stages share within one run: settings, and the models and state they use, made once.

    ``stories`` makes the story state for vectors of a given size: Elasticsearch for the pipeline
    (``index.stories``), memory for a one-off file. Without it the dedupe stage cannot run.
    """

    settings: Settings
    translator: Translator | None = None
    embedder: Embedder | None = None
    stories: Callable[[int], StoryState] | None = None

    def get_embedder(self) -> Embedder:
        if self.embedder is None:
            from enrich.embed import embedder_for

            self.embedder = embedder_for(self.settings)
        return self.embedder


StageRun = Callable[[list[Article], StageContext], object]


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str  # one line for the DAG's documentation and the logs
    run: StageRun


def _language(batch: list[Article], context: StageContext) -> None:
    from enrich.language import detect_language

    for article in batch:
        article.lang = detect_language(article.title, article.text, article.lang_hint)  # type: ignore[assignment]


def _translate(batch: list[Article], context: StageContext) -> object:
    from enrich.translate import translate_articles

    return translate_articles(batch, context.settings, translator=context.translator)


def _embed(batch: list[Article], context: StageContext) -> None:
    """Title + lead in the original language: the multilingual model puts translations next to each
    other, so an English query finds Chinese coverage without MT. Articles that already carry a vector
    of the configured model keep it."""
    from enrich.embed import passage_text

    embedder = context.get_embedder()
    todo = [a for a in batch if a.embedding is None or a.embedding_model != embedder.name]
    if not todo:
        return
    vectors = embedder.passages([passage_text(a.title, a.lead, a.text) for a in todo])
    for article, vector in zip(todo, vectors, strict=True):
        article.embedding = [float(x) for x in vector]
        article.embedding_model = embedder.name
        article.embedding_dim = embedder.dim


def _classify(batch: list[Article], context: StageContext) -> None:
    """AI relevance, event types (calibrated) and entities from the title and lead, with the vector
    the embed stage made (the model's own e5 family; another configured model means one more pass)."""
    import numpy as np

    from enrich.embed import get_embedder, passage_text
    from enrich.events_model import MODEL_EMBEDDER, clean_input, judge

    cleaned: list[tuple[Article, str, str]] = []
    for article in batch:
        try:
            title, lead = clean_input(article.title, article.lead or article.text)
        except ValueError:  # no letters to judge (an empty or symbol-only page): not an AI story
            article.ai_related, article.event_type, article.event_types = False, "other", ["other"]
            article.entities = []
            continue
        cleaned.append((article, title, lead))
    if not cleaned:
        return
    own = get_embedder(MODEL_EMBEDDER, context.settings.embedding_threads)
    reusable = [a.embedding if a.embedding_model == own.name else None for a, _, _ in cleaned]
    missing = [i for i, vector in enumerate(reusable) if vector is None]
    if missing:
        extra = own.passages([passage_text(cleaned[i][1], cleaned[i][2]) for i in missing])
        for i, vector in zip(missing, extra, strict=True):
            reusable[i] = [float(x) for x in vector]
    vectors = np.asarray(reusable, dtype=np.float32)
    judgments = judge([t for _, t, _ in cleaned], [lead for _, _, lead in cleaned], vectors)
    for (article, _, _), judgment in zip(cleaned, judgments, strict=True):
        result = judgment.prediction
        article.ai_related = result.ai_related
        article.event_type = result.event_type  # type: ignore[assignment]
        article.event_types = list(result.event_types)
        article.event_scores = dict(result.event_scores)
        article.events = [
            {"type": kind, "confidence": result.event_scores[kind], "evidence": result.evidence.get(kind, [])}
            for kind in result.event_types
        ]
        article.entities = judgment.entities


def _dedupe(batch: list[Article], context: StageContext) -> list[Record]:
    """Exact and near duplicates, then the learned same-story decision, for the whole batch at once
    (one read of the story state, one write); returns the decisions (``match``, ``score``) in batch
    order."""
    from enrich.dedupe import StoryAssigner, article_input, model_from, params_from

    if context.stories is None:
        raise StageError("story assignment needs a story state (Elasticsearch or memory)")
    missing = [a.id for a in batch if a.embedding is None]
    if missing:
        raise StageError(f"story assignment needs the embed stage first ({len(missing)} lack a vector)")
    state = context.stories(len(batch[0].embedding or ()))
    assigner = StoryAssigner(state, params_from(context.settings), model_from(context.settings))
    records = assigner.assign_batch([article_input(a) for a in batch])
    for article, record in zip(batch, records, strict=True):
        article.story_id = record.story_id
        article.duplicate_of = record.duplicate_of
    return records


STAGES: tuple[Stage, ...] = (
    Stage("language", "de / en / zh / other, from script, py3langid and the source's hint", _language),
    Stage("translate", "English title and lead by the configured backend, or the name glossary", _translate),
    Stage("embed", "one multilingual vector of title + lead per article, with its model name", _embed),
    Stage("classify", "AI relevance, event types and canonical entities", _classify),
    Stage("dedupe", "duplicates and cross-language stories (state in Elasticsearch)", _dedupe),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no enrichment stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def stages_until(last: str) -> tuple[Stage, ...]:
    """Every stage up to and including ``last``: what a command needs before its own stage."""
    return STAGES[: STAGE_NAMES.index(stage(last).name) + 1]


@dataclass
class EnrichReport:
    articles: list[Article]
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds
    results: dict[str, object] = field(default_factory=dict)  # stage → what it reported, if anything

    def summary(self) -> str:
        total = sum(self.timings.values())
        stages = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.timings.items())
        return f"enriched {len(self.articles)} articles in {total:.2f}s ({stages})"


def run_stages(
    articles: Sequence[Article], context: StageContext, stages: Sequence[Stage] | None = None
) -> EnrichReport:
    """Run the stages (default: all) over one batch, timing each, so a slow stage shows in the log."""
    batch = list(articles)
    report = EnrichReport(batch)
    if not batch:
        return report
    for current in STAGES if stages is None else stages:
        started = time.perf_counter()
        result = current.run(batch, context)
        report.timings[current.name] = time.perf_counter() - started
        if result is not None:
            report.results[current.name] = result
    log.info("%s", report.summary())
    return report
