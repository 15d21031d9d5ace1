"""Language identification restricted to the languages newsradar monitors (de, en, zh).

Design, measured with ``python -m bench.enrich_quality`` on real publisher pages and on the dev set:

* **Script first.** Han characters decide Chinese: a Chinese headline is often a third Latin
  ("OpenAI发布GPT-5", "英伟达H20芯片"), and n-gram detectors are pulled towards English by those product
  names. Each Han character carries about as much evidence as a Latin word, so Han characters are
  weighted against Latin *words*, not letters. Kana or Hangul mean Japanese or Korean → "other".
* **py3langid for Latin script.** Deterministic, ~60k strings/s, and more accurate than langdetect on
  short titles. It is asked for its full ranking (so "other" languages such as French or Arabic are
  still recognisable) and the monitored languages are compared among themselves.
* **The source hint as a tie-breaker.** A German site quoting an English sentence, or a four-word
  title, is ambiguous; the hint decides only when the detector's margin is small, so an English
  article on a German site is still labelled "en".
* langdetect (seeded, restricted profiles) is kept as :func:`detect_langdetect` for the benchmark
  only: it is ~100x slower and less accurate on titles.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from newsradar.text import count_han

MONITORED = ("de", "en", "zh")
_SAMPLE_CHARS = 1500  # enough for a stable decision; longer only costs time

_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ɏ]{2,}")
_OTHER_SCRIPT = re.compile(
    r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u0e00-\u0e7f]"
)
_URL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+")

# German-only letters are strong evidence even in a four-word title.
_GERMAN_CHARS = re.compile(r"[äöüßÄÖÜ]")

# Probability margin (among de/en) below which the source hint decides.
_HINT_MARGIN = 0.9
# A non-monitored language must win this clearly (and on this much text) to yield "other".
_OTHER_PROB = 0.97
_OTHER_MIN_LETTERS = 40


def normalise_lang(code: str | None) -> str | None:
    """Map source hints and detector codes ("zh-CN", "zh-hans", "de-AT", "en_US") to de/en/zh/None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base in ("zh", "cmn", "yue", "chi", "zho"):
        return "zh"
    if base in ("de", "ger", "deu", "gsw"):
        return "de"
    if base in ("en", "eng"):
        return "en"
    return None


@lru_cache(maxsize=1)
def _langid() -> Any:
    """Load py3langid's model once; full label set so that "other" stays detectable."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _clean(title: str, text: str) -> str:
    sample = f"{title}\n{text[:_SAMPLE_CHARS]}" if text else title
    return _URL.sub(" ", sample).strip()


def _script_decision(sample: str) -> str | None:
    """Decide by writing system where that is unambiguous; None hands over to the n-gram model."""
    han = count_han(sample)
    kana = len(_KANA.findall(sample))
    hangul = len(_HANGUL.findall(sample))
    if kana + hangul > max(2, 0.1 * (han + kana + hangul)):
        return "other"
    latin_words = len(_LATIN_WORD.findall(sample))
    if han >= 2 and han >= 0.5 * latin_words:
        return "zh"
    if han == 1 and latin_words == 0:
        return "zh"
    others = len(_OTHER_SCRIPT.findall(sample))
    latin_letters = sum(len(w) for w in _LATIN_WORD.findall(sample))
    if others > max(3, latin_letters):
        return "other"
    if latin_words == 0:
        return "other" if others else "unknown"
    return None


def _latin_decision(sample: str, hint: str | None) -> str:
    ranking = dict(_langid().rank(sample))
    de, en = ranking.get("de", 0.0), ranking.get("en", 0.0)
    p_other = max((p for lang, p in ranking.items() if lang not in MONITORED), default=0.0)
    letters = sum(len(w) for w in _LATIN_WORD.findall(sample))
    if p_other >= _OTHER_PROB and letters >= _OTHER_MIN_LETTERS and hint is None:
        return "other"
    if p_other >= _OTHER_PROB and letters >= 4 * _OTHER_MIN_LETTERS:
        return "other"
    total = de + en
    if total <= 0.0:
        return hint if hint in ("de", "en") else ("de" if _GERMAN_CHARS.search(sample) else "en")
    p_de = de / total
    if _GERMAN_CHARS.search(sample) and letters < 60:
        p_de = max(p_de, 0.75)
    choice = "de" if p_de >= 0.5 else "en"
    margin = abs(2 * p_de - 1)
    if hint in ("de", "en") and hint != choice and margin < _HINT_MARGIN and letters < 400:
        return hint
    return choice


def detect_language(title: str, text: str = "", hint: str | None = None) -> str:
    """Return "de", "en", "zh" or "other" for an article.

    Title and text are judged together (titles alone are often too short); the source's language
    hint only breaks near-ties, so a mislabelled feed cannot override clear evidence.
    """
    norm_hint = normalise_lang(hint)
    sample = _clean(title, text)
    if not sample:
        return norm_hint or "other"
    by_script = _script_decision(sample)
    if by_script == "unknown":  # digits and punctuation only: nothing to judge
        return norm_hint or "other"
    if by_script is not None:
        return by_script
    return _latin_decision(sample, norm_hint)


def detect_py3langid(title: str, text: str = "") -> str:
    """Plain py3langid restricted to de/en/zh (benchmark baseline)."""
    sample = _clean(title, text)
    if not sample:
        return "other"
    ranking = _langid().rank(sample)
    for lang, _ in ranking:
        if lang in MONITORED:
            return str(lang)
    return "other"


@lru_cache(maxsize=1)
def _langdetect_factory() -> Any:
    """A private langdetect factory with only de/en/zh profiles, seeded so results are repeatable."""
    from pathlib import Path

    import langdetect
    from langdetect.detector_factory import DetectorFactory

    profiles = Path(langdetect.__file__).parent / "profiles"
    factory = DetectorFactory()
    factory.load_json_profile(
        [(profiles / name).read_text("utf-8") for name in ("de", "en", "zh-cn", "zh-tw")]
    )
    factory.set_seed(0)
    return factory


def detect_langdetect(title: str, text: str = "") -> str:
    """langdetect, seeded and restricted to de/en/zh (benchmark baseline; slow)."""
    from langdetect.lang_detect_exception import LangDetectException

    sample = _clean(title, text)
    detector = _langdetect_factory().create()
    detector.append(sample)
    try:
        code = str(detector.detect())
    except LangDetectException:
        return "other"
    return normalise_lang(code) or "other"
