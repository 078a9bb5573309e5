# mypy: disable-error-code="valid-type"
"""Results and quality: a pool's aggregated answers, its kind (training, exam), mixer,
dynamic overlap and hints; a worker's training feedback. Admin changes are audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from contracts.rpc import Page
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security, StaffActor, WorkerActor
from gateway_service.routes import budgets
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import page

router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]

QualityBody = body_of(tasks_rpc.PoolQualitySet, "PoolQualityBody", without={"pool_id"})
HintsBody = body_of(tasks_rpc.TaskHintsSet, "TaskHintsBody", without={"pool_id"})
AggregateBody = body_of(tasks_rpc.AggregationRequest, "AggregateBody", without={"pool_id"})


@router.get("/pools/{pool_id}/results", response_model=tasks_rpc.PoolResults, tags=["pools"],
            summary="A pool's aggregated answers per task and field, by one method")
async def pool_results(actor: StaffActor, rpc: Rpc, pool_id: Id, p: PageQ,
                       method: tasks_rpc.AggregationMethod = "majority_vote",
                       ) -> tasks_rpc.PoolResults:
    return await rpc.call(tasks_rpc.POOL_RESULTS, tasks_rpc.PoolResultsRequest(
        actor=actor, pool_id=pool_id, method=method, page=p))


@router.get("/pools/{pool_id}/quality", response_model=tasks_rpc.PoolQualityView,
            tags=["pools"], summary="A pool's kind, mixer and dynamic overlap")
async def get_quality(actor: StaffActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.PoolQualityView:
    return await rpc.call(tasks_rpc.GET_POOL_QUALITY,
                          tasks_rpc.PoolGet(actor=actor, pool_id=pool_id))


@router.put("/admin/pools/{pool_id}/quality", response_model=tasks_rpc.PoolQualityView,
            tags=["admin: pools"],
            summary="Set a pool's kind (real, training, exam), mixer and dynamic overlap")
async def set_quality(actor: AdminActor, rpc: Rpc, pool_id: Id, body: QualityBody,
                      security: Security, address: Address) -> tasks_rpc.PoolQualityView:
    req = request_of(body, tasks_rpc.PoolQualitySet, actor=actor, pool_id=pool_id)
    if req.dynamic_max_overlap is not None:
        await budgets.reserve_for_change(actor, rpc, pool_id,
                                         dynamic_max_overlap=req.dynamic_max_overlap)
    result = await rpc.call(tasks_rpc.SET_POOL_QUALITY, req)
    await security.audit.record("pool.quality_changed", actor.user_id, pool_id,
                                result.model_dump(mode="json"), address=address)
    return result


@router.put("/admin/pools/{pool_id}/hints", response_model=tasks_rpc.TaskHintsSaved,
            tags=["admin: pools"], summary="Hints of known-answer tasks (shown after training)")
async def set_hints(actor: AdminActor, rpc: Rpc, pool_id: Id, body: HintsBody,
                    security: Security, address: Address) -> tasks_rpc.TaskHintsSaved:
    result = await rpc.call(tasks_rpc.SET_TASK_HINTS, request_of(
        body, tasks_rpc.TaskHintsSet, actor=actor, pool_id=pool_id))
    await security.audit.record("pool.hints_set", actor.user_id, pool_id,
                                {"saved": result.saved}, address=address)
    return result


@router.post("/admin/pools/{pool_id}/aggregations",
             response_model=tasks_rpc.AggregationState, tags=["admin: pools"],
             summary="Ask for a pool's aggregation by a method (computed in the background)")
async def request_aggregation(actor: AdminActor, rpc: Rpc, pool_id: Id,
                              body: AggregateBody) -> tasks_rpc.AggregationState:
    return await rpc.call(tasks_rpc.REQUEST_AGGREGATION, request_of(
        body, tasks_rpc.AggregationRequest, actor=actor, pool_id=pool_id))


@router.get("/worker/assignments/{assignment_id}/feedback",
            response_model=tasks_rpc.TrainingFeedback, tags=["worker"],
            summary="After a training answer: right or wrong, the known answer and the hint")
async def training_feedback(actor: WorkerActor, rpc: Rpc,
                            assignment_id: Id) -> tasks_rpc.TrainingFeedback:
    return await rpc.call(tasks_rpc.TRAINING_FEEDBACK, tasks_rpc.AssignmentRef(
        actor=actor, assignment_id=assignment_id))
