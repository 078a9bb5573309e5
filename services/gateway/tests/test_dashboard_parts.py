"""The owner dashboard shows what the services that answer know: one service away leaves
only its own part empty, named in ``unavailable``; any other refusal still refuses."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.rpc import Actor, ErrorBody
from contracts.rpc import ledger as ledger_rpc
from contracts.rpc import support as support_rpc
from contracts.rpc import tasks as tasks_rpc
from gateway_service.routes.dashboards import owner_dashboard
from servicekit.errors import RpcCallError

ADMIN = Actor(user_id="admin-1", role="admin")
COUNTS = ledger_rpc.DashboardCounts(assignment_credits=3, bonuses=0, workers=2,
                                    payouts_pending=1, payouts_approved=0, payouts_rejected=0)


class Rpc:
    def __init__(self, refuse: dict[str, ErrorBody]) -> None:
        self.refuse = refuse

    async def call(self, spec: Any, request: Any) -> Any:
        if spec.subject in self.refuse:
            raise RpcCallError(self.refuse[spec.subject])
        if spec is tasks_rpc.LIST_POOLS:
            return tasks_rpc.Pools(items=[], total=0)
        if spec is ledger_rpc.OWNER_DASHBOARD:
            return ledger_rpc.Dashboard(totals=[], counts=COUNTS)
        if spec is support_rpc.SUPPORT_STATS:
            return support_rpc.SupportStats(open=4, answered=1, closed=2)
        raise AssertionError(spec.subject)


async def test_support_away_leaves_only_its_part_empty() -> None:
    away = ErrorBody(code="service_unavailable", status=503, message="no service answers")
    d = await owner_dashboard(ADMIN, Rpc({support_rpc.SUPPORT_STATS.subject: away}))
    assert d.support is None and d.money is not None and d.money.counts.workers == 2
    assert d.task_flow is not None and d.task_flow.tasks_total == 0
    assert [(u.part, u.code) for u in d.unavailable] == [("support", "service_unavailable")]


async def test_every_part_when_all_answer_and_two_away_named() -> None:
    d = await owner_dashboard(ADMIN, Rpc({}))
    assert d.unavailable == [] and d.support is not None and d.support.open == 4
    slow = ErrorBody(code="service_timeout", status=504, message="did not answer in time")
    d = await owner_dashboard(ADMIN, Rpc({tasks_rpc.LIST_POOLS.subject: slow,
                                          ledger_rpc.OWNER_DASHBOARD.subject: slow}))
    assert d.task_flow is None and d.money is None and d.support is not None
    assert [u.part for u in d.unavailable] == ["money", "task_flow"]


async def test_a_refusal_that_is_not_an_absence_still_refuses() -> None:
    denied = ErrorBody(code="forbidden", status=403, message="admins only")
    with pytest.raises(RpcCallError):
        await owner_dashboard(ADMIN, Rpc({ledger_rpc.OWNER_DASHBOARD.subject: denied}))
