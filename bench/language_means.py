"""Per-language mean document vectors of an embedding model: `python -m bench.language_means`.

Writes `index/language_means.json`, which hybrid search reads (`index.space`): the mean vector of the
model's passages per language (de, en, zh), computed from the project's training headlines
(`../shared/data/headlines/train.jsonl`, read there at run time; only the 384 numbers per language
are written, no text). Embedded exactly as ingest embeds an article (`passage_text(title, lead, text)`,
the snippet as text). No labels are used.

Run it again for another model (`NEWSRADAR_EMBEDDING_*`): each model's entry is kept under its name.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.search_dev import HEADLINES, headline_records
from enrich.embed import embedder_for, passage_text
from index.space import MEANS_PATH
from newsradar.settings import get_settings


def compute(records: list[dict[str, str]], embedder: object) -> dict[str, list[float]]:
    texts = [passage_text(r["title"], "", r.get("text") or "") for r in records]
    vectors = np.asarray(embedder.passages(texts), dtype=np.float64)  # type: ignore[attr-defined]
    langs = np.array([r["lang"] for r in records])
    return {
        lang: [round(float(x), 6) for x in vectors[langs == lang].mean(axis=0)] for lang in ("de", "en", "zh")
    }


def _dumps(data: dict[str, dict[str, object]]) -> str:
    """Readable JSON with each vector on one line."""
    lines = ["{"]
    for i, (model, entry) in enumerate(data.items()):
        lines.append(f"  {json.dumps(model)}: {{")
        for key, value in entry.items():
            if key == "means":
                assert isinstance(value, dict)
                vectors = [f"      {json.dumps(lang)}: {json.dumps(v)}" for lang, v in value.items()]
                lines.append('    "means": {\n' + ",\n".join(vectors) + "\n    }")
            else:
                lines.append(f"    {json.dumps(key)}: {json.dumps(value)},")
        lines.append("  }" + ("," if i < len(data) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=MEANS_PATH)
    args = parser.parse_args(argv)
    embedder = embedder_for(get_settings())
    records = headline_records()
    means = compute(records, embedder)
    data = json.loads(args.out.read_text("utf-8")) if args.out.is_file() else {}
    counts = {lang: sum(1 for r in records if r["lang"] == lang) for lang in means}
    data[embedder.name] = {"dim": embedder.dim, "source": HEADLINES.name, "documents": counts, "means": means}
    args.out.write_text(_dumps(data), "utf-8")
    print(f"{embedder.name}: means of {counts} written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
