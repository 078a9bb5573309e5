# mypy: disable-error-code="valid-type"
"""The sandbox: staff (admin, manager) try a sandbox project's pools as a worker would.

A sandbox pool is never in the workers' list and a worker's take from it is a 404; staff
take from it here, without trust limits, pauses or captchas, see the task as a worker does
and submit answers with proof and comment, which managers review as usual. Nothing of it
is paid (the ledger skips sandbox acceptances) or counted (rules and statistics skip them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Rpc, StaffActor
from gateway_service.routes.bodies import request_of
from gateway_service.routes.tasks import PageQ, SubmitBody
from gateway_service.routes.worker_views import ActiveAssignments, active_of

router = APIRouter(tags=["sandbox"])

Id = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/sandbox/pools/{pool_id}/take", response_model=tasks_rpc.TakeResult,
             summary="Try a sandbox pool as a worker: take its next task (staff; no limits, "
                     "no captcha; nothing paid or counted)",
             responses={403: {"description": "not_sandbox: the pool is not a sandbox pool"},
                        404: {"description": "pool_not_found, no_tasks_available"},
                        409: {"description": "pool_not_open"}})
async def take(actor: StaffActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.TakeResult:
    return await rpc.call(tasks_rpc.TAKE, tasks_rpc.Take(actor=actor, pool_id=pool_id))


@router.get("/sandbox/active", response_model=ActiveAssignments,
            summary="My active sandbox assignments with their instructions and answer form")
async def active(actor: StaffActor, rpc: Rpc) -> ActiveAssignments:
    return await active_of(actor, rpc)


@router.get("/sandbox/assignments", response_model=tasks_rpc.Assignments,
            summary="My sandbox assignments, newest first (to follow their review)")
async def my_assignments(actor: StaffActor, rpc: Rpc, p: PageQ) -> tasks_rpc.Assignments:
    return await rpc.call(tasks_rpc.MY_ASSIGNMENTS, tasks_rpc.MyAssignments(actor=actor, page=p))


@router.post("/sandbox/assignments/{assignment_id}/submit", response_model=tasks_rpc.Assignment,
             summary="Submit answers, a comment and proof for a sandbox assignment (reviewed "
                     "as usual, never paid)")
async def submit(actor: StaffActor, rpc: Rpc, assignment_id: Id,
                 body: SubmitBody) -> tasks_rpc.Assignment:
    return await rpc.call(tasks_rpc.SUBMIT, request_of(
        body, tasks_rpc.Submit, actor=actor, assignment_id=assignment_id))


@router.post("/sandbox/assignments/{assignment_id}/skip", response_model=tasks_rpc.Assignment,
             summary="Give a sandbox assignment back to its pool")
async def skip(actor: StaffActor, rpc: Rpc, assignment_id: Id) -> tasks_rpc.Assignment:
    return await rpc.call(tasks_rpc.SKIP, tasks_rpc.AssignmentRef(
        actor=actor, assignment_id=assignment_id))
