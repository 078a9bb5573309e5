"""Aggregation (against crowd-kit's reference methods), the mixer's suites, dynamic overlap,
exam scores and the export's new columns: pure functions, no database."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from contracts.rpc.tasks import PoolQuality
from tasks_service import domain
from tasks_service.aggregate_job import run
from tasks_service.aggregation import Coded, aggregate
from tasks_service.results import exam_score, mixer_slot, needs_more, vote_confidence


def simulate(n_tasks: int = 1000, overlap: int = 5, per_group: int = 10, k: int = 3,
             seed: int = 7) -> tuple[Coded, np.ndarray]:
    """Three worker groups of accuracy 0.95, 0.7 and 0.5; wrong answers uniform."""
    rng = np.random.default_rng(seed)
    acc = np.repeat([0.95, 0.7, 0.5], per_group)
    truth = rng.integers(0, k, n_tasks)
    t = np.repeat(np.arange(n_tasks), overlap)
    w = np.concatenate([rng.choice(len(acc), overlap, replace=False) for _ in range(n_tasks)])
    ok = rng.random(len(t)) < acc[w]
    lab = np.where(ok, truth[t], (truth[t] + rng.integers(1, k, len(t))) % k)
    return Coded(t.astype(np.int32), w.astype(np.int32), lab.astype(np.int32), n_tasks,
                 len(acc), k, {}), truth


def accuracy(method: str, c: Coded, truth: np.ndarray) -> float:
    return float((aggregate(method, c).label == truth).mean())


def test_dawid_skene_beats_majority_vote_on_workers_of_known_accuracy() -> None:
    c, truth = simulate()
    mv, ds = accuracy("majority_vote", c, truth), accuracy("dawid_skene", c, truth)
    assert ds > mv + 0.02, (mv, ds)
    assert accuracy("wawa", c, truth) > mv


def test_the_methods_agree_with_crowd_kit() -> None:
    from crowdkit.aggregation import DawidSkene, MajorityVote

    c, truth = simulate(seed=11)
    df = pd.DataFrame({"task": c.t, "worker": c.w, "label": c.lab})
    theirs = DawidSkene(n_iter=100).fit_predict(df).sort_index().to_numpy()
    ours = aggregate("dawid_skene", c).label
    assert (theirs == ours).mean() >= 0.99
    # majority vote: crowd-kit breaks ties at random, so compare where there is no tie
    mv = aggregate("majority_vote", c)
    theirs_mv = MajorityVote().fit_predict(df).sort_index().to_numpy()
    clear = mv.confidence > 0.5
    assert clear.sum() > 800 and (theirs_mv[clear] == mv.label[clear]).all()


def test_zero_based_skill_agrees_with_crowd_kit() -> None:
    from crowdkit.aggregation import MajorityVote, ZeroBasedSkill

    c, truth = simulate(seed=11)
    df = pd.DataFrame({"task": c.t, "worker": c.w, "label": c.lab})
    # crowd-kit's own predict() fails under scikit-learn 1.9; fit() and the skill-weighted
    # vote it would return are what it computes
    skills = ZeroBasedSkill().fit(df).skills_
    theirs = MajorityVote().fit(df, skills).labels_.sort_index().to_numpy()
    ours = aggregate("zero_based_skill", c).label
    assert (theirs == ours).mean() >= 0.99
    assert accuracy("zero_based_skill", c, truth) > accuracy("majority_vote", c, truth)


# measured on this data (seeds 11, 12): One-coin 100 %, GLAD 99.9-100 %, MACE 99.5-99.6 % the
# same labels. Thresholds: One-coin is the same EM with another stopping rule; GLAD's M step
# is a few Newton steps where crowd-kit runs conjugate gradients; MACE starts from another
# random draw and its variational fit ends at a slightly different point.
@pytest.mark.parametrize(("method", "reference", "agreement"), [
    ("one_coin_dawid_skene", "OneCoinDawidSkene", 0.995),
    ("glad", "GLAD", 0.99),
    ("mace", "MACE", 0.98),
])
def test_one_coin_glad_and_mace_agree_with_crowd_kit(method: str, reference: str,
                                                     agreement: float) -> None:
    import crowdkit.aggregation

    c, truth = simulate(seed=11)
    df = pd.DataFrame({"task": c.t, "worker": c.w, "label": c.lab})
    model = getattr(crowdkit.aggregation, reference)()
    theirs_p = model.fit_predict_proba(df).sort_index()
    theirs = theirs_p.to_numpy().argmax(axis=1)
    ours = aggregate(method, c)
    assert (theirs == ours.label).mean() >= agreement
    # the confidence is the posterior of the chosen label: close to crowd-kit's where both
    # chose the same one
    same = theirs == ours.label
    their_conf = theirs_p.to_numpy().max(axis=1)
    assert np.median(np.abs(their_conf[same] - ours.confidence[same])) < 0.02
    assert accuracy(method, c, truth) > accuracy("majority_vote", c, truth) + 0.03


@pytest.mark.parametrize("method", ["one_coin_dawid_skene", "glad", "mace"])
def test_slices_of_answers_give_the_same_result_as_one(method: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-answer arithmetic runs a slice at a time (memory): 5,000 answers in one slice
    and in slices of 700 (the last one short) give the same labels and confidences."""
    from tasks_service import aggregation

    c, _ = simulate(seed=5)
    whole = aggregate(method, c)
    monkeypatch.setattr(aggregation, "CHUNK", 700)
    sliced = aggregate(method, c)
    assert (whole.label == sliced.label).all()
    assert np.allclose(whole.confidence, sliced.confidence, atol=1e-9)


def test_golden_tasks_are_known_truth_and_sharpen_skills() -> None:
    c, truth = simulate(n_tasks=300, seed=3)
    gold = {i: int(truth[i]) for i in range(0, 300, 10)}
    c_gold = Coded(c.t, c.w, c.lab, c.n_tasks, c.n_workers, c.n_labels, gold)
    for method in ("majority_vote", "gold_majority_vote", "dawid_skene",
                   "one_coin_dawid_skene", "glad", "mace"):
        agg = aggregate(method, c_gold)
        assert all(agg.label[i] == v and agg.confidence[i] == 1.0 for i, v in gold.items())
    assert accuracy("gold_majority_vote", c_gold, truth) > accuracy("majority_vote", c, truth)


def test_golden_tasks_turn_an_always_wrong_majority_around() -> None:
    """Four of seven workers always answer wrong: without known answers the EM trusts them;
    with one task in ten golden, Dawid-Skene and One-coin learn who is wrong and invert
    them. (GLAD's N(1, 1) prior on abilities and MACE's spammer model do not reach that far
    with 10 % gold: decision 40.)"""
    rng = np.random.default_rng(5)
    n, acc = 200, np.array([0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    truth = rng.integers(0, 2, n)
    t, w = np.repeat(np.arange(n), len(acc)), np.tile(np.arange(len(acc)), n)
    lab = np.where(rng.random(len(t)) < acc[w], truth[t], 1 - truth[t])
    gold = {i: int(truth[i]) for i in range(0, n, 10)}
    rest = np.array([i for i in range(n) if i not in gold])
    for method in ("dawid_skene", "one_coin_dawid_skene"):
        got = {}
        for name, known in (("plain", {}), ("gold", gold)):
            c = Coded(t.astype(np.int32), w.astype(np.int32), lab.astype(np.int32), n,
                      len(acc), 2, known)
            got[name] = (aggregate(method, c).label[rest] == truth[rest]).mean()
        assert got["plain"] < 0.1 and got["gold"] > 0.95, (method, got)


def test_the_job_codes_string_answers_and_decodes_results() -> None:
    answers = [("t1", f"w{i}", {"label": "cat", "note": "x"}) for i in range(3)]
    answers += [("t1", "w3", {"label": "dog"}), ("t2", "w0", {"label": "dog"}),
                ("t2", "w1", {"label": "dog"})]
    pa, rows = run("majority_vote", ["label", "note"], answers, [("t3", {"label": "bird"})])
    got = {(r["task_id"], r["field"]): r for r in rows}
    assert pa.n_answers == 6
    assert got[("t1", "label")]["answer"] == "cat" and got[("t1", "label")]["answers"] == 4
    assert got[("t1", "label")]["confidence"] == 0.75
    assert got[("t2", "label")]["answer"] == "dog" and got[("t2", "label")]["confidence"] == 1
    assert got[("t3", "label")]["answer"] == "bird"  # golden: known, no answers needed
    assert got[("t1", "note")]["answers"] == 3 and ("t2", "note") not in got


@pytest.mark.parametrize("final", [[], ["t2"], ["t1", "t2", "unknown"]])
def test_the_job_marks_final_tasks_in_lines_it_can_print(final: list[str]) -> None:
    """``final`` per line: the tasks that needed no more answers (none, some, all), each line
    printable as JSON as the job prints it."""
    answers = [("t1", "w0", {"label": "cat"}), ("t2", "w0", {"label": "dog"}),
               ("t2", "w1", {"label": "dog"})]
    _, rows = run("majority_vote", ["label"], answers, [], final)
    lines = [json.loads(json.dumps(r)) for r in rows]
    assert {r["task_id"]: r["final"] for r in lines} == {t: t in final for t in ("t1", "t2")}


def test_a_mixer_of_4_real_and_1_golden_serves_that_ratio() -> None:
    q = PoolQuality(mixer_real=4, mixer_golden=1)
    slots = [mixer_slot(q, n) for n in range(100)]
    assert slots.count("real") == 80 and slots.count("golden") == 20
    q3 = PoolQuality(mixer_real=3, mixer_golden=1, mixer_training=1)
    assert [mixer_slot(q3, n) for n in range(5)] == ["real"] * 3 + ["golden", "training"]
    assert mixer_slot(PoolQuality(), 5) is None
    assert mixer_slot(PoolQuality(kind="exam", mixer_real=1), 0) is None


def test_dynamic_overlap_stops_at_confidence_or_maximum() -> None:
    q = PoolQuality(dynamic_max_overlap=5, dynamic_confidence=0.8)
    easy = [{"a": "x"}] * 3
    hard = [{"a": "x"}, {"a": "y"}, {"a": "x"}]
    assert vote_confidence(easy, ["a"]) == 1.0
    assert not needs_more(q, overlap=3, accepted=3, confidence=vote_confidence(easy, ["a"]))
    assert needs_more(q, overlap=3, accepted=3, confidence=vote_confidence(hard, ["a"]))
    assert not needs_more(q, overlap=3, accepted=2, confidence=0.1)  # not full yet
    assert not needs_more(q, overlap=5, accepted=5, confidence=0.1)  # the maximum
    assert not needs_more(PoolQuality(), overlap=3, accepted=3, confidence=0.1)


def test_exam_score_is_the_share_of_right_known_answers() -> None:
    known = {"a": "Yes"}
    assert exam_score([({"a": "yes "}, known), ({"a": "no"}, known), ({"a": "yes"}, known)]) == 66
    assert exam_score([]) == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_export_has_golden_decision_reviewer_and_aggregates(fmt: str) -> None:
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    row = {"assignment_id": "a1", "task_id": "t1", "worker_id": "w1", "status": "ACCEPTED",
           "input": {"q": "?"}, "answers": {"label": "cat"}, "comment": None, "proof": None,
           "started_at": at, "submitted_at": at, "golden": True, "decided_at": at,
           "reviewer": "m1"}
    kw = {"input_fields": ["q"], "output_fields": ["label"],
          "methods": ("dawid_skene", "majority_vote")}
    aggregates = {("t1", "majority_vote", "label"): ("cat", 0.6),
                  ("t1", "dawid_skene", "label"): ("dog", 0.9)}
    lines = domain.result_rows([row], fmt, aggregates=aggregates, **kw)
    if fmt == "json":
        got = json.loads(lines[0])
        assert got["golden"] is True and got["reviewer"] == "m1"
        assert got["results"]["dawid_skene"]["label"] == {"answer": "dog", "confidence": 0.9}
        return
    text = domain.results_header(fmt, **kw) + lines[0]
    got = next(csv.DictReader(io.StringIO(text)))
    assert got["ASSIGNMENT:golden"] == "true" and got["ASSIGNMENT:reviewer"] == "m1"
    assert got["ASSIGNMENT:decided"] == at.isoformat()
    assert got["RESULT:majority_vote:label"] == "cat"
    assert got["RESULT:dawid_skene:label"] == "dog"
    assert got["RESULT:dawid_skene:label:confidence"] == "0.9000"
