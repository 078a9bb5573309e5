"""Categorical answer aggregation over integer-coded answers, vectorised with numpy.

The methods are those of Toloka's crowd-kit (majority vote, Wawa, ZeroBasedSkill, gold
majority vote, Dawid-Skene, One-coin Dawid-Skene, GLAD, MACE), written again on flat int32
arrays: crowd-kit itself needs pandas and scikit-learn, whose import alone takes a process
past the 150 MB memory rule (decisions 33, 40). The tests check these against crowd-kit
on the same data.

Input: three equal-length arrays ``t`` (task index), ``w`` (worker index), ``lab`` (label
index), the sizes ``n_tasks``, ``n_workers``, ``n_labels``, and golden tasks as known truth
(task index -> label index). Output: per task the label index (-1 when the task has no
answer), the confidence (0..1) and the number of answers.

This module is imported only by :mod:`tasks_service.aggregate_job`, the short-lived
process that aggregates a pool, never by the service process itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

IntArr = npt.NDArray[np.int32]
FloatArr = npt.NDArray[np.float64]

METHODS = ("majority_vote", "wawa", "zero_based_skill", "gold_majority_vote", "dawid_skene",
           "one_coin_dawid_skene", "glad", "mace")


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


def _gold_arrays(c: Coded) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    return (np.fromiter(c.gold.keys(), dtype=np.int64, count=len(c.gold)),
            np.fromiter(c.gold.values(), dtype=np.int64, count=len(c.gold)))


def _normalise(c: Coded, p: FloatArr) -> FloatArr:
    """Rows summed to one (a task without answers: uniform); golden tasks clamped to their
    known label."""
    s = p.sum(axis=1, keepdims=True)
    p = np.divide(p, s, out=np.full_like(p, 1.0 / c.n_labels), where=s > 0)
    if c.gold:
        gold_t, gold_l = _gold_arrays(c)
        p[gold_t] = 0.0
        p[gold_t, gold_l] = 1.0
    return p


def _posterior(c: Coded, log_p: FloatArr) -> FloatArr:
    """Normalised probabilities from unnormalised log-probabilities per (task, label)."""
    log_p -= log_p.max(axis=1, keepdims=True)
    return _normalise(c, np.exp(log_p))


CHUNK = 1 << 17  # answers per slice in the methods below: their temporaries stay a few MB

PerAnswer = Callable[[slice], tuple[FloatArr, ...]]


def _slices(n: int) -> Iterator[slice]:
    for lo in range(0, n, CHUNK):
        yield slice(lo, lo + CHUNK)


def _sums_by(index: IntArr, size: int, per_answer: PerAnswer) -> list[FloatArr]:
    """Sums by ``index`` (task or worker) of the arrays ``per_answer`` gives for each slice
    of the answers: the per-answer arithmetic never holds more than one slice."""
    out: list[FloatArr] = []
    for sl in _slices(len(index)):
        for k, v in enumerate(per_answer(sl)):
            part = np.bincount(index[sl], weights=v, minlength=size)
            if k < len(out):
                out[k] += part
            else:
                out.append(part.astype(np.float64))
    return out or [np.zeros(size)]


def _one_coin_log_p(c: Coded, log_prior: FloatArr, per_answer: PerAnswer) -> FloatArr:
    """log P(true label = k | answers) up to a constant per task, for answers that are right
    with log-probability ``log_right`` and each wrong label ``log_wrong``, which
    ``per_answer(slice)`` gives: every answer adds ``log_wrong`` to every label and
    ``log_right - log_wrong`` to its own."""
    k_n = c.n_labels
    base = np.zeros(c.n_tasks)
    own = np.zeros(c.n_tasks * k_n)
    for sl in _slices(len(c.t)):
        log_right, log_wrong = per_answer(sl)
        t = c.t[sl]
        base += np.bincount(t, weights=log_wrong, minlength=c.n_tasks)
        own += np.bincount(t.astype(np.int64) * k_n + c.lab[sl], weights=log_right - log_wrong,
                           minlength=c.n_tasks * k_n)
    return log_prior[None, :] + base[:, None] + own.reshape(c.n_tasks, k_n)


def dawid_skene(c: Coded, *, n_iter: int = 100, tol: float = 1e-5) -> Aggregated:
    """Dawid and Skene's EM (1979): a confusion matrix per worker, class priors, and the
    posterior of each task's true label; golden tasks are clamped to their known label.
    Memory: O(answers + tasks x labels + workers x labels^2)."""
    k_n = c.n_labels
    probs = _normalise(c, _counts(c))
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
        probs = _posterior(c, log_p)
        if prev is not None and np.abs(probs - prev).max() < tol:
            break
        prev = probs
    agg = _from_scores(c, probs)
    return _with_gold(c, agg)


def _posterior_of_answer(c: Coded, probs: FloatArr, sl: slice) -> tuple[FloatArr]:
    return (probs[c.t[sl], c.lab[sl]],)


def _by_worker(c: Coded, *per_worker: FloatArr) -> PerAnswer:
    return lambda sl: tuple(v[c.w[sl]] for v in per_worker)


def one_coin_dawid_skene(c: Coded, *, n_iter: int = 100, tol: float = 1e-5,
                         eps: float = 1e-10) -> Aggregated:
    """crowd-kit's OneCoinDawidSkene: Dawid-Skene with one skill per worker instead of a
    confusion matrix (right with probability ``skill``, each wrong label with
    ``(1 - skill) / (labels - 1)``); the skill is the mean posterior of the worker's own
    answers. Starts from the majority vote; golden tasks are clamped to their known label."""
    if c.n_labels < 2:
        return majority_vote(c)
    probs = _normalise(c, _counts(c))
    seen = np.maximum(np.bincount(c.w, minlength=c.n_workers), 1)
    prev = None
    for _ in range(n_iter):
        priors = np.clip(probs.mean(axis=0), eps, None)
        skill = _sums_by(c.w, c.n_workers, partial(_posterior_of_answer, c, probs))[0] / seen
        skill = np.clip(skill, eps, 1 - eps)
        right, wrong = np.log(skill), np.log((1 - skill) / (c.n_labels - 1))
        probs = _posterior(c, _one_coin_log_p(c, np.log(priors),
                                              _by_worker(c, right, wrong)))
        if prev is not None and np.abs(probs - prev).max() < tol:
            break
        prev = probs
    return _with_gold(c, _from_scores(c, probs))


def _sigmoid(x: FloatArr) -> FloatArr:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)  # stable for any x


def glad(c: Coded, *, n_iter: int = 100, tol: float = 1e-4, m_steps: int = 2) -> Aggregated:
    """Whitehill et al.'s GLAD (2009), as crowd-kit fits it: a worker's ability ``alpha``
    and a task's ``beta`` (its inverse difficulty is ``exp(beta)``), an answer right with
    probability ``sigmoid(alpha * exp(beta))`` and each wrong label equally likely, normal
    priors N(1, 1) on both, uniform label priors. EM: the E step is the posterior of each
    task's label; the M step (crowd-kit: up to 25 conjugate-gradient steps) is here a few
    diagonal Newton steps on alpha, then beta, a slice of answers at a time (a 1M answer
    pool: decision 40). Golden tasks are clamped to their known label."""
    if c.n_labels < 2:
        return majority_vote(c)
    alpha = np.ones(c.n_workers)
    beta = np.ones(c.n_tasks)
    log_k1 = np.log(c.n_labels - 1)

    def e_step() -> FloatArr:
        eb = np.exp(beta)

        def per_answer(sl: slice) -> tuple[FloatArr, FloatArr]:
            x = alpha[c.w[sl]] * eb[c.t[sl]]
            wrong = -np.logaddexp(0.0, x) - log_k1  # log((1 - sigmoid(x)) / (K - 1))
            return wrong + x + log_k1, wrong  # log sigmoid(x) = log(1 - sigmoid(x)) + x
        return _posterior(c, _one_coin_log_p(c, np.zeros(c.n_labels), per_answer))

    def newton(probs: FloatArr, by_worker: bool) -> FloatArr:
        """One Newton step on alpha (``by_worker``) or beta: the gradient of the expected
        log-likelihood sum((P(right) - s) dx) minus the prior's (param - 1), over its
        curvature sum(s (1 - s) dx^2) + 1; dx/dalpha = exp(beta), dx/dbeta = x."""
        eb = np.exp(beta)

        def per_answer(sl: slice) -> tuple[FloatArr, FloatArr]:
            t, w = c.t[sl], c.w[sl]
            ebt = eb[t]
            x = alpha[w] * ebt
            s = _sigmoid(x)
            d = ebt if by_worker else x
            return (probs[t, c.lab[sl]] - s) * d, s * (1.0 - s) * d * d
        param = alpha if by_worker else beta
        grad, curv = _sums_by(c.w if by_worker else c.t, len(param), per_answer)
        return param + (grad - (param - 1.0)) / (curv + 1.0)

    probs = e_step()
    for _ in range(n_iter):
        for _ in range(m_steps):
            alpha = newton(probs, True)
            beta = np.clip(newton(probs, False), -10.0, 10.0)
        new = e_step()
        done = np.abs(new - probs).max() < tol
        probs = new
        if done:
            break
    return _with_gold(c, _from_scores(c, probs))


def _digamma(x: FloatArr) -> FloatArr:
    """The digamma function for x > 0: the recurrence up to 6, then the asymptotic series
    (error under 1e-10), so that the service needs no scipy."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        out -= np.where(small, 1.0 / x, 0.0)
        x = np.where(small, x + 1.0, x)
    inv2 = 1.0 / (x * x)
    return out + np.log(x) - 0.5 / x - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 / 252))


def _vb_normalise(counts: FloatArr, prior: float) -> FloatArr:
    """MACE's variational M step: exp(digamma(count + prior)) over exp(digamma(row sum))."""
    a = counts + prior
    return np.exp(_digamma(a) - _digamma(a.sum(axis=1, keepdims=True)))


def mace(c: Coded, *, n_iter: int = 50, theta_prior: float = 0.5, strategy_prior: float = 10.0,
         seed: int = 0) -> Aggregated:
    """Hovy et al.'s MACE (2013), as crowd-kit fits it by default (variational Bayes): each
    answer is either the worker knowing the true label (probability ``knowing``) or spamming
    by the worker's own label distribution ``theta``; Beta(0.5, 0.5) and Dirichlet(10)
    priors. Random start from a fixed seed (crowd-kit's ten restarts use the same seed, so
    they are one run); golden tasks are clamped to their known label. A slice of answers at
    a time, like GLAD."""
    k_n = c.n_labels
    rng = np.random.default_rng(seed)
    spam = rng.uniform(1.0, 2.5, (c.n_workers, 2))  # columns: spamming, knowing
    spam /= spam.sum(axis=1, keepdims=True)
    theta = rng.uniform(1.0, 2.5, (c.n_workers, k_n))
    theta /= theta.sum(axis=1, keepdims=True)

    def ab(sl: slice) -> tuple[FloatArr, FloatArr]:
        """Per answer: P(this answer | spamming) and P(knowing: it is the true label)."""
        w = c.w[sl]
        return spam[w, 0] * theta[w, c.lab[sl]], spam[w, 1]

    def e_step() -> tuple[FloatArr, FloatArr, FloatArr]:
        def log_p(sl: slice) -> tuple[FloatArr, FloatArr]:
            a, b = ab(sl)  # every label gets log(a), the answer's own log(a + b)
            return np.log(a + b), np.log(a)
        probs = _posterior(c, _one_coin_log_p(c, np.zeros(k_n), log_p))
        strategy = np.zeros(c.n_workers * k_n)
        knowing = np.zeros((c.n_workers, 2))
        for sl in _slices(len(c.t)):
            a, b = ab(sl)
            w = c.w[sl]
            knew = probs[c.t[sl], c.lab[sl]] * b / (a + b)  # expected "knowing" per answer
            spammed = 1.0 - knew
            strategy += np.bincount(w.astype(np.int64) * k_n + c.lab[sl], weights=spammed,
                                    minlength=c.n_workers * k_n)
            knowing[:, 0] += np.bincount(w, weights=spammed, minlength=c.n_workers)
            knowing[:, 1] += np.bincount(w, weights=knew, minlength=c.n_workers)
        return probs, strategy.reshape(c.n_workers, k_n), knowing

    probs, strategy, knowing = e_step()
    for _ in range(n_iter):
        spam = _vb_normalise(knowing, theta_prior)
        theta = _vb_normalise(strategy, strategy_prior)
        probs, strategy, knowing = e_step()
    return _with_gold(c, _from_scores(c, probs))


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
    if method == "one_coin_dawid_skene":
        return one_coin_dawid_skene(c)
    if method == "glad":
        return glad(c)
    if method == "mace":
        return mace(c)
    raise ValueError(f"unknown aggregation method {method}")
