"""The assistant's knowledge base and a small lexical matcher (pure, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass

FAQ: tuple[tuple[str, str], ...] = (
    ("How do I take a task?",
     "Open the pool of tasks and press Take on a task. You can hold a limited number of "
     "active tasks at once and must wait a short pause between takes; both depend on your "
     "trust level."),
    ("Why can't I take another task?",
     "Either you reached the limit of active tasks for your trust level, or the pause "
     "between takes has not passed yet, or a quality rule restricted you in this pool. "
     "The error message says which limit and when it frees up."),
    ("When do I get paid for a task?",
     "When a manager accepts your submission (or the pool auto-accepts it), your balance is "
     "credited at once. Rejected submissions are not paid."),
    ("How do I withdraw money?",
     "Request a payout from your balance page with the amount and your payout details in the "
     "comment. The amount is put on hold until the owner approves or rejects the request."),
    ("What happens if I do not submit in time?",
     "An active task that is not submitted before its timeout expires and returns to the "
     "shared pool; another worker may take it."),
    ("How do I report a problem with a task?",
     "Use Report a problem on the task: choose a reason and describe it. The report reaches "
     "support and the requester."),
    ("How do trust levels work?",
     "New workers start at the 'new' level. Admins raise reliable workers to 'verified' and "
     "'trusted', which allow more active tasks and shorter pauses."),
    ("Why was I restricted in a pool?",
     "Quality-control rules watch answers (captcha, control tasks, majority vote, fast "
     "answers, earnings caps). A rule may suspend you in a pool for a while or block you."),
)

_WORD = re.compile(r"[a-zа-яё0-9]+", re.IGNORECASE)
_STOP = {"i", "a", "the", "to", "do", "is", "my", "can", "how", "what", "why", "when", "for",
         "of", "in", "on", "t", "it", "an", "if", "not", "get", "does"}


def _terms(text: str) -> set[str]:
    return {w[:6] for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP}


@dataclass(frozen=True)
class Match:
    question: str
    answer: str
    score: float


def best_answer(question: str, *, threshold: float = 0.25) -> Match | None:
    """The FAQ entry sharing the most terms with ``question`` (Jaccard on stems)."""
    q = _terms(question)
    if not q:
        return None
    best: Match | None = None
    for faq_q, faq_a in FAQ:
        t = _terms(faq_q) | (_terms(faq_a) & q)
        score = len(q & t) / len(q | _terms(faq_q))
        if best is None or score > best.score:
            best = Match(faq_q, faq_a, round(score, 3))
    return best if best and best.score >= threshold else None
