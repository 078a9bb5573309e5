"""How a ticket's state follows its thread (pure, no I/O).

    open --staff answers--> answered --owner writes--> open
    open/answered --close--> closed --owner writes--> open (reopened)

A staff answer to a closed ticket is refused: the ticket is done until its owner writes
again (or staff reopen it by answering after the owner wrote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["open", "answered", "closed"]
Change = Literal["answered", "reopened", "none"]


@dataclass(frozen=True)
class Step:
    status: Status
    change: Change


class TicketClosed(Exception):
    """Staff answered a closed ticket."""


def after_message(status: Status, *, from_staff: bool) -> Step:
    """The ticket's state after a message, and the event it is worth."""
    if from_staff:
        if status == "closed":
            raise TicketClosed
        return Step("answered", "answered")
    if status == "open":
        return Step("open", "none")
    return Step("open", "reopened")


def may_read(*, owner_id: str, user_id: str, role: str) -> bool:
    return role in ("manager", "admin") or owner_id == user_id


def may_close(*, owner_id: str, user_id: str, role: str) -> bool:
    return may_read(owner_id=owner_id, user_id=user_id, role=role)
