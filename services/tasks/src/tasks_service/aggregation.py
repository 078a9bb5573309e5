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

from dataclasses import dataclass

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


def _one_coin_log_p(c: Coded, log_prior: FloatArr, log_right: FloatArr,
                    log_wrong: FloatArr) -> FloatArr:
    """log P(true label = k | answers) up to a constant per task, for answers that are right
    with per-answer log-probability ``log_right`` and each wrong label ``log_wrong``: every
    answer adds ``log_wrong`` to every label and ``log_right - log_wrong`` to its own."""
    base = np.bincount(c.t, weights=log_wrong, minlength=c.n_tasks)
    return log_prior[None, :] + base[:, None] + _counts(c, log_right - log_wrong)


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
        skill = np.bincount(c.w, weights=probs[c.t, c.lab], minlength=c.n_workers) / seen
        skill = np.clip(skill, eps, 1 - eps)
        log_right = np.log(skill)[c.w]
        log_wrong = np.log((1 - skill) / (c.n_labels - 1))[c.w]
        probs = _posterior(c, _one_coin_log_p(c, np.log(priors), log_right, log_wrong))
        if prev is not None and np.abs(probs - prev).max() < tol:
            break
        prev = probs
    return _with_gold(c, _from_scores(c, probs))


def glad(c: Coded, *, n_iter: int = 100, tol: float = 1e-4, m_steps: int = 2) -> Aggregated:
    """Whitehill et al.'s GLAD (2009), as crowd-kit fits it: a worker's ability ``alpha``
    and a task's ``beta`` (its inverse difficulty is ``exp(beta)``), an answer right with
    probability ``sigmoid(alpha * exp(beta))`` and each wrong label equally likely, normal
    priors N(1, 1) on both, uniform label priors. EM: the E step is the posterior of each
    task's label; the M step (crowd-kit: up to 25 conjugate-gradient steps) is here a few
    diagonal Newton steps on alpha, then beta, on per-answer arrays reused in place (a 1M
    answer pool: decision 40). Golden tasks are clamped to their known label."""
    if c.n_labels < 2:
        return majority_vote(c)
    alpha = np.ones(c.n_workers)
    beta = np.ones(c.n_tasks)
    log_k1 = np.log(c.n_labels - 1)
    n = len(c.t)
    eb, x, s, tmp = (np.empty(n) for _ in range(4))

    def e_step() -> FloatArr:
        # log sigmoid(x) - log((1 - sigmoid(x)) / (K - 1)) = x + log(K - 1)
        np.take(np.exp(beta), c.t, out=eb)
        np.multiply(np.take(alpha, c.w), eb, out=x)
        np.logaddexp(0.0, x, out=tmp)
        np.subtract(-log_k1, tmp, out=tmp)
        base = np.bincount(c.t, weights=tmp, minlength=c.n_tasks)
        np.add(x, log_k1, out=tmp)
        return _posterior(c, base[:, None] + _counts(c, tmp))

    def sigmoid_x() -> None:  # s = sigmoid(x), stably: (1 + tanh(x / 2)) / 2
        np.multiply(x, 0.5, out=s)
        np.tanh(s, out=s)
        np.add(s, 1.0, out=s)
        np.multiply(s, 0.5, out=s)

    def newton(right: FloatArr, index: IntArr, size: int, param: FloatArr,
               scale: FloatArr) -> FloatArr:
        # gradient sum((right - s) * scale) - (param - 1); curvature sum(s(1-s) scale^2) + 1
        np.subtract(right, s, out=tmp)
        np.multiply(tmp, scale, out=tmp)
        grad = np.bincount(index, weights=tmp, minlength=size) - (param - 1.0)
        np.subtract(1.0, s, out=tmp)
        np.multiply(tmp, s, out=tmp)
        np.multiply(tmp, scale, out=tmp)
        np.multiply(tmp, scale, out=tmp)
        return param + grad / (np.bincount(index, weights=tmp, minlength=size) + 1.0)

    probs = e_step()
    for _ in range(n_iter):
        right = probs[c.t, c.lab]  # the posterior that each answer is the true label
        for _ in range(m_steps):
            sigmoid_x()
            alpha = newton(right, c.w, c.n_workers, alpha, eb)  # dx/dalpha = exp(beta)
            np.multiply(np.take(alpha, c.w), eb, out=x)
            sigmoid_x()
            beta = np.clip(newton(right, c.t, c.n_tasks, beta, x), -10.0, 10.0)  # dx/dbeta = x
            np.take(np.exp(beta), c.t, out=eb)
            np.multiply(np.take(alpha, c.w), eb, out=x)
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
    they are one run); golden tasks are clamped to their known label."""
    k_n = c.n_labels
    rng = np.random.default_rng(seed)
    spam = rng.uniform(1.0, 2.5, (c.n_workers, 2))  # columns: spamming, knowing
    spam /= spam.sum(axis=1, keepdims=True)
    theta = rng.uniform(1.0, 2.5, (c.n_workers, k_n))
    theta /= theta.sum(axis=1, keepdims=True)
    wl = c.w.astype(np.int64) * k_n + c.lab
    a_buf, b_buf, knew, tmp = (np.empty(len(c.t)) for _ in range(4))

    def e_step() -> tuple[FloatArr, FloatArr, FloatArr]:
        # per answer: a = P(this answer | spamming), b = P(knowing: the true label); every
        # label gets log(a), the answer's own log(a + b) on top (buffers reused in place)
        np.multiply(spam[:, 0].take(c.w), theta.reshape(-1).take(wl), out=a_buf)
        spam[:, 1].take(c.w, out=b_buf)
        np.log(a_buf, out=tmp)
        base = np.bincount(c.t, weights=tmp, minlength=c.n_tasks)
        np.add(a_buf, b_buf, out=a_buf)  # a + b from here on
        np.log(a_buf, out=knew)
        np.subtract(knew, tmp, out=tmp)
        probs = _posterior(c, base[:, None] + _counts(c, tmp))
        # expected "knowing" of each answer: P(right) * b / (a + b)
        np.multiply(probs[c.t, c.lab], b_buf, out=knew)
        np.divide(knew, a_buf, out=knew)
        np.subtract(1.0, knew, out=tmp)
        strategy = np.bincount(wl, weights=tmp, minlength=c.n_workers * k_n)
        knowing = np.stack([np.bincount(c.w, weights=tmp, minlength=c.n_workers),
                            np.bincount(c.w, weights=knew, minlength=c.n_workers)], axis=1)
        return (probs, np.asarray(strategy.reshape(c.n_workers, k_n), dtype=np.float64),
                np.asarray(knowing, dtype=np.float64))

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
