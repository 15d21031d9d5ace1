"""The learned same-story decision (enrich.same_story): features, the model file, story choice without
chaining, merges, redirects, one batch; no Elasticsearch, no embedding model."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from enrich.same_story import (
    COLUMN,
    FEATURES,
    MODEL_PATH,
    Fingerprint,
    Model,
    Redirects,
    aggregate,
    assign_batch,
    choose_story,
    fields_for,
    load_model,
    pair_features,
)

T0 = datetime(2026, 6, 3, 12, tzinfo=UTC)


def unit(seed: int, near: np.ndarray | None = None, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=384) if near is None else near + noise * rng.normal(size=384)
    return (v / np.linalg.norm(v)).astype(np.float32)


def toy_model(threshold: float = 0.5, **kw: object) -> Model:
    """P(same) driven by cosine only: logit = 40 * (cos - 0.9)."""
    return Model(("cos",), np.zeros(1), np.ones(1), np.array([40.0]), -36.0, threshold, threshold, 0.95, **kw)  # type: ignore[arg-type]


def fp(
    aid: str, vec: np.ndarray | None, lang: str = "en", published: datetime | None = None, **sets: object
) -> Fingerprint:
    return Fingerprint(
        aid,
        lang,
        vector=vec,
        model="m",
        published=published.timestamp() if published else math.nan,
        **{k: frozenset(v) for k, v in sets.items()},  # type: ignore[arg-type]
    )


def test_shipped_model_loads_and_reads_few_fields() -> None:
    model = load_model()
    assert MODEL_PATH.is_file() and MODEL_PATH.stat().st_size < 4096
    assert model.features[0] == "cos" and 0.3 < model.threshold < 0.6
    assert set(model.prior) == {"code_conflict", "entity_conflict"}
    assert fields_for(model.needs) == ("leads", "names", "title_codes")


def test_features_shapes_and_overlaps() -> None:
    v = unit(1)
    a = fp(
        "a",
        v,
        names=["openai", "altman", "sora"],
        numbers=["7.2e+10", "40%"],
        big_numbers=["7.2e+10", "40%"],
        leads=["OpenAI"],
        title_codes=["gpt5"],
    )
    b = fp(
        "b",
        v,
        names=["openai", "sora", "video"],
        numbers=["7.2e+10"],
        big_numbers=["7.2e+10"],
        leads=["OpenAI"],
    )
    c = fp(
        "c",
        v,
        lang="de",
        names=["openai", "sora", "video"],
        numbers=["9e+10"],
        big_numbers=["9e+10"],
        leads=["Google"],
        title_codes=["gemini3"],
    )
    X = pair_features(a, [b, c])
    assert X.shape == (2, len(FEATURES))
    assert X[0, COLUMN["cos"]] == pytest.approx(1.0, abs=1e-5)
    assert X[0, COLUMN["names_shared"]] == pytest.approx(math.log1p(2))
    assert X[1, COLUMN["names_shared"]] == 0.0  # names only count within one language
    assert X[1, COLUMN["cross"]] == 1.0 and X[0, COLUMN["cross"]] == 0.0
    assert X[0, COLUMN["numbers_shared"]] == 1.0
    assert X[1, COLUMN["number_conflict"]] == 1.0 and X[0, COLUMN["number_conflict"]] == 0.0
    assert X[1, COLUMN["entity_conflict"]] == 1.0 and X[0, COLUMN["entity_conflict"]] == 0.0
    assert (
        X[1, COLUMN["code_conflict"]] == 1.0 and X[0, COLUMN["code_conflict"]] == 0.0
    )  # b has no title code
    # cosines given by the caller (a kNN score) replace the vectors
    given = pair_features(a, [b, c], cos=np.array([0.5, 0.25]), only=("cos", "cross"))
    assert given[:, COLUMN["cos"]].tolist() == [0.5, 0.25] and given[0, COLUMN["names_shared"]] == 0.0


def test_missing_vector_and_time_never_raise() -> None:
    a = fp("a", None)
    b = fp("b", unit(2), published=T0)
    X = pair_features(a, [b])
    assert np.isfinite(X).all() and X[0, COLUMN["cos"]] == 0.0
    assert choose_story(a, [b], [0], ["s1"], toy_model()).story_id is None
    # a member without a vector is never matched; an article with one still decides
    assert choose_story(b, [a], [0], ["s1"], toy_model()).story_id is None


def test_model_round_trip_json(tmp_path: Path) -> None:
    m = Model(
        ("cos", "cross"),
        np.array([0.8, 0.2]),
        np.array([0.06, 0.4]),
        np.array([3.0, 0.6]),
        -1.0,
        0.46,
        0.46,
        0.95,
        prior={"code_conflict": -6.0},
    )
    path = tmp_path / "m.json"
    m.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "newsradar-same-story/1" and data["prior"] == {"code_conflict": -6.0}
    again = Model.load(path)
    X = np.random.default_rng(0).random((5, len(FEATURES)))
    assert np.allclose(again.probability(X), m.probability(X))
    with pytest.raises(ValueError, match="unknown features"):
        Model.from_json({**data, "features": ["no_such_feature"], "mean": [0], "scale": [1], "coef": [1]})
    with pytest.raises(ValueError, match="not a same-story model"):
        Model.from_json({**data, "format": "pickle"})
    path.write_text("{broken")
    with pytest.raises(ValueError, match="same-story model"):
        Model.load(path)


def test_prior_vetoes_conflicting_codes() -> None:
    v = unit(3)
    m = toy_model(prior={"code_conflict": -6.0})
    a = fp("a", v, title_codes=["h20"])
    p = m.probability(pair_features(a, [fp("b", v, title_codes=["b30"]), fp("c", v, title_codes=["h20"])]))
    assert p[0] < 0.5 < p[1]


def test_joins_best_story_not_the_first_above_threshold() -> None:
    base = unit(4)
    choice = choose_story(
        fp("new", base),
        [fp("w", unit(5, base, 0.02)), fp("s", base)],
        [0, 1],
        ["story-weak", "story-strong"],
        toy_model(),
    )
    assert choice.story_id == "story-strong" and choice.best_member == "s"


def test_no_chaining_through_one_member() -> None:
    """A story {x1, x2, x3, y} that drifted towards y; a new article like y only. Single linkage (max)
    takes it, the default (mean of best and average member) does not."""
    x, y_vec = unit(6), unit(7)
    story = [fp("x1", x), fp("x2", unit(16, x, 0.01)), fp("x3", unit(17, x, 0.01)), fp("y", y_vec)]
    model = toy_model(0.7)
    assert choose_story(fp("a", y_vec), story, [0, 0, 0, 0], ["s"], model, linkage="max").story_id == "s"
    assert choose_story(fp("a", y_vec), story, [0, 0, 0, 0], ["s"], model).story_id is None
    assert aggregate(np.array([1.0, 0.0]), np.array([0, 0]), 1, "mean_max")[0] == pytest.approx(0.75)


def test_centroid_cap_when_only_the_near_end_is_retrieved() -> None:
    x, y_vec = unit(18), unit(19)
    members = [fp("y", y_vec)]
    model = toy_model(0.5)
    assert choose_story(fp("a", y_vec), members, [0], ["s"], model).story_id == "s"
    centroid = (x + y_vec)[None, :].astype(np.float32)
    assert choose_story(fp("a", y_vec), members, [0], ["s"], model, centroids=centroid).story_id is None
    assert choose_story(fp("a", y_vec), members, [0], ["s"], model, centroids=y_vec[None, :]).story_id == "s"


def test_time_window_and_unknown_times() -> None:
    v = unit(8)
    a = fp("a", v, published=T0)
    old = fp("o", v, published=T0 - timedelta(days=30))
    m = toy_model()
    assert choose_story(a, [old], [0], ["s"], m).story_id is None
    assert choose_story(a, [fp("u", v)], [0], ["s"], m).story_id == "s"
    assert choose_story(fp("b", v), [old], [0], ["s"], m).story_id == "s"  # unknown time never vetoes
    assert choose_story(a, [old], [0], ["s"], m, window_hours=None).story_id == "s"


def test_merge_needs_evidence_from_both_sides() -> None:
    v = unit(9)
    s1, s2, far = [fp("p", v), fp("q", v)], [fp("r", v)], [fp("z", unit(10))]
    m = toy_model()
    choice = choose_story(fp("a", v), s1 + s2 + far, [0, 0, 1, 2], ["s1", "s2", "s3"], m)
    assert choice.story_id in ("s1", "s2") and len(choice.merge) == 1 and "s3" not in choice.merge
    assert choose_story(fp("a", v), s1 + s2, [0, 0, 1], ["s1", "s2"], m, allow_merge=False).merge == ()
    # candidates that came with cosines only: their vectors are fetched for the merge check
    bare = [fp("p", None), fp("q", None), fp("r", None)]
    fetched = {"p": v, "q": v, "r": v}
    asked: list[list[str]] = []

    def vectors(ids: list[str]) -> dict[str, np.ndarray]:
        asked.append(sorted(ids))
        return {i: fetched[i] for i in ids}

    choice = choose_story(fp("a", v), bare, [0, 0, 1], ["s1", "s2"], m, cos=np.ones(3), vectors=vectors)  # type: ignore[arg-type]
    assert len(choice.merge) == 1 and asked == [["p", "q", "r"]]
    assert choose_story(fp("a", v), bare, [0, 0, 1], ["s1", "s2"], m, cos=np.ones(3)).merge == ()


def test_redirects_resolve_and_survive_cycles() -> None:
    r = Redirects()
    r.merge("b", "a")
    r.merge("c", "b")
    assert r.resolve("c") == "a" and r.resolve("b") == "a" and r.resolve("a") == "a"
    assert Redirects({"x": "y", "y": "x"}).resolve("x") in ("x", "y")


def test_assign_batch_members_see_each_other_and_duplicates() -> None:
    base = unit(11)
    stored = fp("old", unit(12))
    items = [fp("n1", base), fp("n2", unit(13, base, 0.005)), fp("n3", unit(14)), fp("n4", unit(15))]
    hits = [[(stored, float(stored.vector @ f.vector))] for f in items]  # type: ignore[operator]
    res = assign_batch(items, hits, {"old": "s-old"}, toy_model(), duplicate_of={"n4": ("old", "near", 0.8)})
    by = {a.article_id: a for a in res.assignments}
    assert by["n1"].match == "new" and by["n2"].match == "story" and by["n2"].story_id == by["n1"].story_id
    assert by["n3"].match == "new" and by["n3"].story_id != by["n1"].story_id
    assert by["n4"].match == "near" and by["n4"].story_id == "s-old" and by["n4"].duplicate_of == "old"
    assert by["n4"].score == 0.8
    assert sorted(res.added[by["n1"].story_id]) == ["n1", "n2"]


def test_assign_batch_merges_keep_the_older_story() -> None:
    v = unit(20)
    p, q = fp("p", v), fp("q", v)
    res = assign_batch(
        [fp("a", v)],
        [[(p, 1.0), (q, 1.0)]],
        {"p": "s-young", "q": "s-old"},
        toy_model(),
        story_age={"s-old": 1.0, "s-young": 2.0}.__getitem__,
    )
    assert res.merges == {"s-young": "s-old"}
    assert res.assignments[0].story_id == "s-old" and res.assignments[0].match == "story"


def test_batch_neighbours_only_of_the_same_model() -> None:
    v = unit(21)
    a = fp("a", v)
    b = Fingerprint("b", "en", vector=v, model="other")
    res = assign_batch([a, b], [[], []], {}, toy_model())
    assert res.assignments[0].story_id != res.assignments[1].story_id
