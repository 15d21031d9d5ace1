"""The interface every machine-translation backend implements (``translate_argos.py``,
``translate_http.py``), apart from the translation stage that picks one (``translate.py``), so the
backends and the stage depend on this module and not on each other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TranslationError(Exception):
    """The backend could not translate a batch (after its retries); the batch is marked ``failed``."""


class Translator(Protocol):
    """One MT backend. Implementations batch internally and raise :class:`TranslationError`."""

    name: str

    def model_id(self, source: str, target: str) -> str | None:
        """A stable id of the model that translates source → target (the cache key), or None when
        this backend has no model for the pair."""

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """One translation per input text, in order; empty strings stay empty."""
