"""Categorical answer aggregation over integer-coded answers, vectorised with numpy.

The methods are those of Toloka's crowd-kit (majority vote, Wawa, ZeroBasedSkill, gold
majority vote, Dawid-Skene), written again on flat int32 arrays: crowd-kit itself needs pandas and
scikit-learn, whose import alone takes a process past the 150 MB memory rule (decision 33).
The tests check these against crowd-kit on the same data.

Input: three equal-length arrays ``t`` (task index), ``w`` (worker index), ``lab`` (label
index), the sizes ``n_tasks``, ``n_workers``, ``n_labels``, and golden tasks as known truth
(task index -> label index). Output: per task the label index (-1 when the task has no
answer), the confidence (0..1) and the number of answers.

This module is imported only by :mod:`tasks_service.aggregate_job`, the short-lived
process that aggregates a pool, never by the service process itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArr = npt.NDArray[np.int32]
FloatArr = npt.NDArray[np.float64]

METHODS = ("majority_vote", "wawa", "zero_based_skill", "gold_majority_vote", "dawid_skene")


@dataclass
class Coded:
    t: IntArr
    w: IntArr
    lab: IntArr
    n_tasks: int
    n_workers: int
    n_labels: int
    gold: dict[int, int]


@dataclass
class Aggregated:
    label: IntArr  # -1: no answer
    confidence: FloatArr
    answers: IntArr


def _counts(c: Coded, weights: FloatArr | None = None) -> FloatArr:
    """Votes per (task, label), optionally weighted per answer: shape (n_tasks, n_labels)."""
    flat = np.bincount(c.t.astype(np.int64) * c.n_labels + c.lab, weights=weights,
                       minlength=c.n_tasks * c.n_labels)
    return flat.reshape(c.n_tasks, c.n_labels).astype(np.float64)


def _from_scores(c: Coded, scores: FloatArr) -> Aggregated:
    """The best label per task and its share of the task's total score."""
    answers = np.bincount(c.t, minlength=c.n_tasks).astype(np.int32)
    total = scores.sum(axis=1)
    label = scores.argmax(axis=1).astype(np.int32)  # ties: the lowest label index
    best = scores[np.arange(c.n_tasks), label]
    conf = np.divide(best, total, out=np.zeros(c.n_tasks), where=total > 0)
    label[answers == 0] = -1
    return Aggregated(label, conf, answers)


def _with_gold(c: Coded, agg: Aggregated) -> Aggregated:
    """Golden tasks keep their known answer, with full confidence."""
    for task, known in c.gold.items():
        agg.label[task] = known
        agg.confidence[task] = 1.0
    return agg


def majority_vote(c: Coded) -> Aggregated:
    return _with_gold(c, _from_scores(c, _counts(c)))


def _agreement(c: Coded, truth: IntArr) -> FloatArr:
    """Each worker's share of answers that agree with ``truth`` (-1 truth: not counted)."""
    known = truth[c.t] >= 0
    hit = (truth[c.t] == c.lab) & known
    seen = np.bincount(c.w[known], minlength=c.n_workers)
    good = np.bincount(c.w[hit], minlength=c.n_workers)
    return np.divide(good, seen, out=np.zeros(c.n_workers), where=seen > 0)


def wawa(c: Coded) -> Aggregated:
    """Worker skill = agreement with the majority vote; then a vote weighted by skill."""
    mv = _from_scores(c, _counts(c)).label
    skill = _agreement(c, mv)
    return _with_gold(c, _from_scores(c, _counts(c, skill[c.w])))


def zero_based_skill(c: Coded, *, n_iter: int = 100, lr: float = 1.0, steps_to_reduce: int = 20,
                     reduce_factor: float = 0.5, eps: float = 1e-5) -> Aggregated:
    """crowd-kit's ZeroBasedSkill: skills start at 1/labels; each step a skill-weighted vote,
    then every skill moves (by a decaying learning rate) towards the worker's agreement with
    it; the answer is the last skill-weighted vote."""
    skill = np.full(c.n_workers, 1.0 / c.n_labels + eps)
    for step in range(1, n_iter + 1):
        if step % steps_to_reduce == 0:
            lr *= reduce_factor
        labels = _from_scores(c, _counts(c, skill[c.w])).label
        skill = skill + lr * (_agreement(c, labels) - skill)
    return _with_gold(c, _from_scores(c, _counts(c, skill[c.w])))


def gold_majority_vote(c: Coded) -> Aggregated:
    """Worker skill = accuracy on golden tasks (workers who saw none: the mean skill); then
    a vote weighted by skill."""
    truth = np.full(c.n_tasks, -1, dtype=np.int32)
    for task, known in c.gold.items():
        truth[task] = known
    on_gold = truth[c.t] >= 0
    seen = np.bincount(c.w[on_gold], minlength=c.n_workers)
    skill = _agreement(c, truth)
    if (seen > 0).any():
        skill[seen == 0] = skill[seen > 0].mean()
    else:
        skill[:] = 1.0
    return _with_gold(c, _from_scores(c, _counts(c, skill[c.w])))


def dawid_skene(c: Coded, *, n_iter: int = 100, tol: float = 1e-5) -> Aggregated:
    """Dawid and Skene's EM (1979): a confusion matrix per worker, class priors, and the
    posterior of each task's true label; golden tasks are clamped to their known label.
    Memory: O(answers + tasks x labels + workers x labels^2)."""
    k_n = c.n_labels
    probs = _counts(c)
    gold_t = np.fromiter(c.gold.keys(), dtype=np.int64, count=len(c.gold))
    gold_l = np.fromiter(c.gold.values(), dtype=np.int64, count=len(c.gold))

    def normalise(p: FloatArr) -> FloatArr:
        s = p.sum(axis=1, keepdims=True)
        p = np.divide(p, s, out=np.full_like(p, 1.0 / k_n), where=s > 0)
        if len(gold_t):
            p[gold_t] = 0.0
            p[gold_t, gold_l] = 1.0
        return p

    probs = normalise(probs)
    wl = c.w.astype(np.int64) * k_n + c.lab
    prev = None
    for _ in range(n_iter):
        # M step: priors and per-worker confusion (true k -> observed j), lightly smoothed
        priors = probs.mean(axis=0) + 1e-12
        errors = np.empty((c.n_workers, k_n, k_n))
        for k in range(k_n):
            errors[:, k, :] = np.bincount(wl, weights=probs[c.t, k],
                                          minlength=c.n_workers * k_n).reshape(c.n_workers, k_n)
        errors += 1e-6
        errors /= errors.sum(axis=2, keepdims=True)
        # E step: log posterior of each true label, summed over the task's answers
        log_p = np.tile(np.log(priors), (c.n_tasks, 1))
        for k in range(k_n):
            log_p[:, k] += np.bincount(c.t, weights=np.log(errors[c.w, k, c.lab]),
                                       minlength=c.n_tasks)
        log_p -= log_p.max(axis=1, keepdims=True)
        probs = normalise(np.exp(log_p))
        if prev is not None and np.abs(probs - prev).max() < tol:
            break
        prev = probs
    agg = _from_scores(c, probs)
    return _with_gold(c, agg)


def aggregate(method: str, c: Coded) -> Aggregated:
    if method == "majority_vote":
        return majority_vote(c)
    if method == "wawa":
        return wawa(c)
    if method == "zero_based_skill":
        return zero_based_skill(c)
    if method == "gold_majority_vote":
        return gold_majority_vote(c)
    if method == "dawid_skene":
        return dawid_skene(c)
    raise ValueError(f"unknown aggregation method {method}")
