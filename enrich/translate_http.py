"""The ``libretranslate`` translation backend: a self-hosted LibreTranslate server over HTTP.

One ``POST /translate`` per batch (``q`` as a list, which LibreTranslate answers with a list).
Rate limiting (429), server errors (5xx), timeouts and refused connections are retried with
exponential backoff (``Retry-After`` honoured, capped); anything else — a 400 for an unsupported
language, a 403 for a wrong API key — fails the batch at once with the server's message, because
retrying cannot fix it. The API key comes from the environment only
(``NEWSRADAR_LIBRETRANSLATE_API_KEY``) and is never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from enrich.translator import TranslationError
from newsradar.http import Transient, retry_after, with_retries

_MAX_RETRY_AFTER = 60.0


class LibreTranslateTranslator:
    name = "libretranslate"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.retries = max(0, retries)
        self.backoff = backoff
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def model_id(self, source: str, target: str) -> str | None:
        # The server decides which pairs it has; an unsupported pair fails the batch with its message.
        return f"libretranslate:{self.url}:{source}-{target}"

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        todo = [(i, t) for i, t in enumerate(texts) if t.strip()]
        out = ["" for _ in texts]
        if not todo:
            return out
        body: dict[str, Any] = {
            "q": [t for _, t in todo],
            "source": source,
            "target": target,
            "format": "text",
        }
        if self._api_key:
            body["api_key"] = self._api_key
        answer = self._post(body)
        translated = answer.get("translatedText") if isinstance(answer, dict) else None
        if isinstance(translated, str) and len(todo) == 1:
            translated = [translated]
        if not isinstance(translated, list) or len(translated) != len(todo):
            raise TranslationError(
                f"{self.url}/translate answered {str(answer)[:200]!r}; expected translatedText with "
                f"{len(todo)} strings"
            )
        for (index, _), value in zip(todo, translated, strict=True):
            out[index] = str(value)
        return out

    def _post(self, body: dict[str, Any]) -> Any:
        def once() -> Any:
            try:
                response = self._client.post("/translate", json=body)
            except httpx.TimeoutException:
                raise Transient(f"timed out after {self._client.timeout.read}s") from None
            except httpx.TransportError as error:
                raise Transient(f"cannot reach {self.url} ({type(error).__name__}: {error})") from None
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError as error:
                    raise TranslationError(f"{self.url}/translate answered non-JSON: {error}") from error
            problem = f"HTTP {response.status_code}: {_message(response)}"
            if response.status_code == 429:
                raise Transient(problem, retry_after=retry_after(response, self.backoff))
            if response.status_code >= 500:
                raise Transient(problem)
            raise TranslationError(problem)

        try:
            return with_retries(
                once, attempts=self.retries + 1, backoff=self.backoff, max_wait=_MAX_RETRY_AFTER
            )
        except Transient as error:
            raise TranslationError(f"{error} (gave up after {self.retries + 1} attempts)") from None

    def close(self) -> None:
        self._client.close()


def _message(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])[:200]
    return str(payload)[:200]
