"""Deterministic Chinese → English name glossary for titles.

No machine translation is available offline, yet an alert reader who does not read Chinese should
still see *who* a headline is about. Replacing the catalog's Chinese aliases with their English
display names ("阿里巴巴发布通义千问新模型" → "Alibaba发布Qwen新模型") gives that at zero cost and
never invents content: everything that is not a catalogued name stays as it was.

Rules, kept deliberately simple:

* The glossary is derived from ``catalog/entities.yaml``: every alias containing Han characters maps
  to the entity's ``display`` name (default: the canonical name); aliases listed in ``gloss_skip``
  (国内 "domestic", 我国 "our country") are left alone.
* Matching reuses the entity matcher (leftmost-longest), so 美国商务部 becomes one name, not "US商务部".
* No spaces are inserted next to Chinese characters (Chinese has none); a single space is inserted
  only where the English name would otherwise run into a Latin letter or digit ("英伟达H20" →
  "Nvidia H20"), so the result never glues two Latin words together.
"""

from __future__ import annotations

import re
from functools import lru_cache

from enrich.entities import catalog
from newsradar.text import has_han

_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


@lru_cache(maxsize=1)
def glossary() -> dict[str, str]:
    """Literal Chinese alias → English display name (for review and for tests)."""
    cat = catalog()
    table: dict[str, str] = {}
    for alias in cat.aliases:
        entity = cat.entities[alias.entity]
        if alias.is_regex or not has_han(alias.text) or alias.text in entity.gloss_skip:
            continue
        table.setdefault(alias.text, entity.display or entity.name)
    return table


def apply_glossary(text: str) -> str:
    """Replace catalogued Chinese names in ``text`` with English names, keeping everything else."""
    if not text or not has_han(text):
        return text
    cat = catalog()
    out: list[str] = []
    pos = 0
    for span in cat.spans(text):
        surface = text[span.start : span.end]
        entity = cat.entities[span.alias.entity]
        if not has_han(surface) or surface in entity.gloss_skip:
            continue
        english = entity.display or entity.name
        out.append(text[pos : span.start])
        before = out[-1][-1:] if out[-1] else (out[-2][-1:] if len(out) > 1 else "")
        after = text[span.end : span.end + 1]
        if before and _ASCII_ALNUM.match(before):
            english = " " + english
        if after and _ASCII_ALNUM.match(after):
            english += " "
        out.append(english)
        pos = span.end
    out.append(text[pos:])
    return "".join(out)
