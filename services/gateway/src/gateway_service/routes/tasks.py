# mypy: disable-error-code="valid-type"
"""Tasks: the worker's taxi-model loop, staff views of projects/pools, admin setup.

Workers and managers never see a price: staff routes answer with the contracts' ``Pool``
(which has no money), and only ``/admin/...`` routes with ``AdminPool``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from contracts.rpc import Actor, Page
from contracts.rpc import tasks as tasks_rpc
from gateway_service.deps import Address, AdminActor, Rpc, Security, StaffActor, WorkerActor
from gateway_service.errors import ApiError
from gateway_service.routes import budgets
from gateway_service.routes.bodies import body_of, request_of
from gateway_service.routes.common import QueryId, page
from servicekit.errors import RpcCallError
from servicekit.rpc import RpcClient

log = logging.getLogger("gateway.routes.tasks")

router = APIRouter()

MAX_UPLOAD_BYTES = 20 * 1024 * 1024

Id = Annotated[str, Path(min_length=1, max_length=64)]
PageQ = Annotated[Page, Depends(page)]


# ------------------------------------------------------------------ bodies and views

TakeBody = body_of(tasks_rpc.Take, "TakeBody",
                   doc={"pool_id": "take from this pool; empty = any pool I may use"})
SubmitBody = body_of(tasks_rpc.Submit, "SubmitBody", without={"assignment_id"},
                     doc={"proof_url": "link to proof of the work (screenshot, page)"})
ReportBody = body_of(tasks_rpc.Report, "ReportBody", without={"assignment_id"}, doc={
    "reason": "e.g. broken_link, unclear_instructions, offensive_content"})
CaptchaBody = body_of(tasks_rpc.CaptchaAnswer, "CaptchaBody")
ProjectBody = body_of(tasks_rpc.ProjectCreate, "ProjectBody")
ProjectPatch = body_of(tasks_rpc.ProjectUpdate, "ProjectPatch", without={"project_id"})
PoolBody = body_of(tasks_rpc.PoolCreate, "PoolBody",
                   doc={"price_minor": "gross price per assignment, minor units"})
PoolPatch = body_of(tasks_rpc.PoolUpdate, "PoolPatch", without={"pool_id"}, doc={
    "price_minor": "only while the pool is a draft",
    "currency": "only while the pool is a draft",
    "overlap": "default for tasks uploaded afterwards"})

# ------------------------------------------------------------------ worker


@router.get("/worker/pools", response_model=tasks_rpc.AvailablePoolList, tags=["worker"],
            summary="Open pools I may take tasks from, with free task counts")
async def available_pools(actor: WorkerActor, rpc: Rpc, p: PageQ) -> tasks_rpc.AvailablePoolList:
    return await rpc.call(tasks_rpc.AVAILABLE_POOLS,
                          tasks_rpc.AvailablePools(actor=actor, page=p))


@router.post("/worker/tasks/take", response_model=tasks_rpc.TakeResult, tags=["worker"],
             summary="Take the next task (optionally from one pool)",
             responses={428: {"description": "captcha_required: details carry the challenge "
                                             "id and image; answer it, then take again"},
                        429: {"description": "take_limit: too many active tasks or too fast"},
                        404: {"description": "no_tasks_available"}})
async def take(actor: WorkerActor, rpc: Rpc,
               body: TakeBody | None = None) -> tasks_rpc.TakeResult:
    return await rpc.call(tasks_rpc.TAKE, request_of(body, tasks_rpc.Take, actor=actor) if body
                          else tasks_rpc.Take(actor=actor, pool_id=None))


@router.get("/worker/assignments", response_model=tasks_rpc.Assignments, tags=["worker"],
            summary="My assignments (filter by status or pool)")
async def my_assignments(actor: WorkerActor, rpc: Rpc, p: PageQ,
                         status_: Annotated[tasks_rpc.AssignmentStatus | None,
                                            Query(alias="status")] = None,
                         pool_id: QueryId = None) -> tasks_rpc.Assignments:
    return await rpc.call(tasks_rpc.MY_ASSIGNMENTS, tasks_rpc.MyAssignments(
        actor=actor, status=status_, pool_id=pool_id, page=p))


@router.post("/worker/assignments/{assignment_id}/submit", response_model=tasks_rpc.Assignment,
             tags=["worker"], summary="Submit answers, a comment and proof for review")
async def submit(actor: WorkerActor, rpc: Rpc, assignment_id: Id,
                 body: SubmitBody) -> tasks_rpc.Assignment:
    return await rpc.call(tasks_rpc.SUBMIT, request_of(
        body, tasks_rpc.Submit, actor=actor, assignment_id=assignment_id))


@router.post("/worker/assignments/{assignment_id}/skip", response_model=tasks_rpc.Assignment,
             tags=["worker"], summary="Give an active assignment back to the pool")
async def skip(actor: WorkerActor, rpc: Rpc, assignment_id: Id) -> tasks_rpc.Assignment:
    return await rpc.call(tasks_rpc.SKIP, tasks_rpc.AssignmentRef(
        actor=actor, assignment_id=assignment_id))


@router.post("/worker/assignments/{assignment_id}/report",
             response_model=tasks_rpc.ReportResult, tags=["worker"],
             summary="Report a problem with a task (becomes a support ticket)")
async def report(actor: WorkerActor, rpc: Rpc, assignment_id: Id,
                 body: ReportBody) -> tasks_rpc.ReportResult:
    return await rpc.call(tasks_rpc.REPORT, request_of(
        body, tasks_rpc.Report, actor=actor, assignment_id=assignment_id))


@router.post("/worker/captcha", response_model=tasks_rpc.CaptchaResult, tags=["worker"],
             summary="Answer the captcha a take asked for")
async def captcha_answer(actor: WorkerActor, rpc: Rpc,
                         body: CaptchaBody) -> tasks_rpc.CaptchaResult:
    return await rpc.call(tasks_rpc.CAPTCHA_ANSWER,
                          request_of(body, tasks_rpc.CaptchaAnswer, actor=actor))


@router.get("/worker/profile", response_model=tasks_rpc.WorkerProfile, tags=["worker"],
            summary="My trust level, skills and restrictions in force")
async def my_profile(actor: WorkerActor, rpc: Rpc) -> tasks_rpc.WorkerProfile:
    return await rpc.call(tasks_rpc.GET_WORKER_PROFILE, tasks_rpc.WorkerProfileGet(
        actor=actor, worker_id=actor.user_id))


# ------------------------------------------------------------------ staff (manager, admin)


@router.get("/projects", response_model=tasks_rpc.Projects, tags=["projects"],
            summary="Projects with their instructions and input/output specs")
async def list_projects(actor: StaffActor, rpc: Rpc, p: PageQ) -> tasks_rpc.Projects:
    return await rpc.call(tasks_rpc.LIST_PROJECTS, tasks_rpc.ProjectList(actor=actor, page=p))


@router.get("/projects/{project_id}", response_model=tasks_rpc.Project, tags=["projects"],
            summary="One project")
async def get_project(actor: StaffActor, rpc: Rpc, project_id: Id) -> tasks_rpc.Project:
    return await rpc.call(tasks_rpc.GET_PROJECT, tasks_rpc.ProjectGet(
        actor=actor, project_id=project_id))


@router.get("/pools", response_model=tasks_rpc.Pools, tags=["pools"],
            summary="Pools (without prices), optionally of one project or status")
async def list_pools(actor: StaffActor, rpc: Rpc, p: PageQ, project_id: QueryId = None,
                     status_: Annotated[tasks_rpc.PoolStatus | None,
                                        Query(alias="status")] = None,
) -> tasks_rpc.Pools:
    return await rpc.call(tasks_rpc.LIST_POOLS, tasks_rpc.PoolList(
        actor=actor, project_id=project_id, status=status_, page=p))


@router.get("/pools/{pool_id}", response_model=tasks_rpc.Pool, tags=["pools"],
            summary="One pool (without its price)")
async def get_pool(actor: StaffActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.Pool:
    return await rpc.call(tasks_rpc.GET_POOL, tasks_rpc.PoolGet(actor=actor, pool_id=pool_id))


@router.get("/pools/{pool_id}/tasks", response_model=tasks_rpc.Tasks, tags=["pools"],
            summary="Tasks of a pool with their live assignment counts")
async def list_tasks(actor: StaffActor, rpc: Rpc, pool_id: Id, p: PageQ) -> tasks_rpc.Tasks:
    return await rpc.call(tasks_rpc.LIST_TASKS, tasks_rpc.TaskList(
        actor=actor, pool_id=pool_id, page=p))


# ------------------------------------------------------------------ admin


@router.post("/admin/projects", response_model=tasks_rpc.Project, tags=["admin: projects"],
             status_code=status.HTTP_201_CREATED, summary="Create a project")
async def create_project(actor: AdminActor, rpc: Rpc,
                         body: ProjectBody) -> tasks_rpc.Project:
    return await rpc.call(tasks_rpc.CREATE_PROJECT,
                          request_of(body, tasks_rpc.ProjectCreate, actor=actor))


@router.patch("/admin/projects/{project_id}", response_model=tasks_rpc.Project,
              tags=["admin: projects"], summary="Change a project's name, instructions or specs")
async def update_project(actor: AdminActor, rpc: Rpc, project_id: Id,
                         body: ProjectPatch) -> tasks_rpc.Project:
    return await rpc.call(tasks_rpc.UPDATE_PROJECT, request_of(
        body, tasks_rpc.ProjectUpdate, actor=actor, project_id=project_id))


@router.post("/admin/pools", response_model=tasks_rpc.AdminPool, tags=["admin: pools"],
             status_code=status.HTTP_201_CREATED, summary="Create a draft pool with its price")
async def create_pool(actor: AdminActor, rpc: Rpc,
                      body: PoolBody) -> tasks_rpc.AdminPool:
    return await rpc.call(tasks_rpc.CREATE_POOL, request_of(body, tasks_rpc.PoolCreate,
                                                            actor=actor))


@router.patch("/admin/pools/{pool_id}", response_model=tasks_rpc.AdminPool,
              tags=["admin: pools"],
              summary="Change a pool's settings (price and currency only while a draft)")
async def update_pool(actor: AdminActor, rpc: Rpc, pool_id: Id,
                      body: PoolPatch) -> tasks_rpc.AdminPool:
    return await rpc.call(tasks_rpc.UPDATE_POOL, request_of(
        body, tasks_rpc.PoolUpdate, actor=actor, pool_id=pool_id))


@router.get("/admin/pools", response_model=tasks_rpc.AdminPools,
            tags=["admin: pools"],
            summary="Pools with their prices")
async def admin_list_pools(actor: AdminActor, rpc: Rpc, p: PageQ, project_id: QueryId = None,
                           status_: Annotated[tasks_rpc.PoolStatus | None,
                                              Query(alias="status")] = None,
) -> tasks_rpc.AdminPools:
    return await rpc.call(tasks_rpc.ADMIN_LIST_POOLS, tasks_rpc.PoolList(
        actor=actor, project_id=project_id, status=status_, page=p))


@router.get("/admin/pools/{pool_id}", response_model=tasks_rpc.AdminPool,
            tags=["admin: pools"],
            summary="One pool with its price")
async def admin_get_pool(actor: AdminActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.AdminPool:
    return await rpc.call(tasks_rpc.ADMIN_GET_POOL, tasks_rpc.PoolGet(actor=actor, pool_id=pool_id))


@router.post("/admin/pools/{pool_id}/open", response_model=tasks_rpc.AdminPool,
             tags=["admin: pools"],
             summary="Open a draft or closed pool to workers (409 below_fair_pay_floor or "
                     "fair_pay_unknown under a fair-pay floor; a requester-funded pool first "
                     "reserves its maximum cost: 409 budget_insufficient)")
async def open_pool(actor: AdminActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.AdminPool:
    return await budgets.open_funded_pool(actor, rpc, pool_id)


@router.post("/admin/pools/{pool_id}/close", response_model=tasks_rpc.AdminPool,
             tags=["admin: pools"],
             summary="Close an open pool (no new takes; its unspent budget is released)")
async def close_pool(actor: AdminActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.AdminPool:
    return await budgets.close_funded_pool(actor, rpc, pool_id)


@router.post("/admin/pools/{pool_id}/archive", response_model=tasks_rpc.AdminPool,
             tags=["admin: pools"], summary="Archive a closed or draft pool")
async def archive_pool(actor: AdminActor, rpc: Rpc, pool_id: Id) -> tasks_rpc.AdminPool:
    return await rpc.call(tasks_rpc.ARCHIVE_POOL, tasks_rpc.PoolTransition(
        actor=actor, pool_id=pool_id))


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                                 "example": [{"INPUT:url": "https://example.com/1.png"},
                                             {"INPUT:url": "https://example.com/2.png",
                                              "GOLDEN:label": "cat"}]},
            "text/tab-separated-values": {"schema": {"type": "string"},
                                          "example": "INPUT:url\tGOLDEN:label\n"
                                                     "https://example.com/2.png\tcat\n"},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/admin/pools/{pool_id}/tasks", response_model=tasks_rpc.UploadResult,
             tags=["admin: pools"], openapi_extra=_UPLOAD_DOC,
             responses={413: {"description": "upload_too_large, row_too_large"},
                        415: {"description": "unsupported_media_type"}},
             summary="Upload tasks: a JSON array of rows, or TSV text with a header line")
async def upload_tasks(actor: AdminActor, rpc: Rpc, pool_id: Id, request: Request,
                       all_or_nothing: Annotated[bool, Query(
                           description="refuse the whole upload if any row is bad")] = False,
) -> tasks_rpc.UploadResult:
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_UPLOAD_BYTES:
        raise ApiError(413, "upload_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    raw = await request.body()
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "upload_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = ctype in ("application/json", "") or ctype.endswith("+json")
    if not is_json and ctype not in ("text/tab-separated-values", "text/tsv", "text/plain"):
        raise ApiError(415, "unsupported_media_type",
                       "send application/json (an array of rows) or text/tab-separated-values")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_encoding", "the upload must be UTF-8 text") from exc
    if not text.strip():
        raise ApiError(422, "empty_upload", "the upload holds no rows")
    content: str | list[Any]
    fmt: Literal["json", "tsv"]
    if is_json:
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc.msg} "
                                            f"(line {exc.lineno})") from exc
        if isinstance(content, dict) and isinstance(content.get("rows"), list):
            content = content["rows"]
        if not isinstance(content, list):
            raise ApiError(422, "bad_rows", "send a JSON array of task rows")
        fmt = "json"
    else:
        content, fmt = text, "tsv"
    budget = min(UPLOAD_CHUNK_BYTES, _max_payload(rpc) - RPC_ENVELOPE_RESERVE)
    chunks = (_json_chunks(content, budget) if isinstance(content, list)
              else _tsv_chunks(content, budget))
    if len(chunks) > 1 and all_or_nothing:
        raise ApiError(413, "upload_too_large",
                       "this upload is too large to be applied all-or-nothing in one piece: "
                       "split it into smaller files or upload without all_or_nothing",
                       details={"parts_needed": len(chunks)})
    rows = (len(content) if isinstance(content, list)
            else max(0, sum(1 for line in content.splitlines() if line.strip()) - 1))
    await budgets.reserve_for_change(actor, rpc, pool_id, extra_tasks=rows)
    return await _upload_in_parts(rpc, actor, pool_id, fmt, chunks, all_or_nothing)


# A NATS message is limited (1 MiB by default), so big uploads go to the tasks service in
# parts, each under the limit; row numbers in errors are mapped back to the whole upload.
UPLOAD_CHUNK_BYTES = 768 * 1024
RPC_ENVELOPE_RESERVE = 8 * 1024
# The reply lists every created task id (about 40 bytes each in JSON): at most this many rows
# per part keep it under the same limit (60,000 short rows fit in 768 KiB, their ids do not,
# and a reply lost that way would have the caller upload them again)
MAX_ROWS_PER_PART = 20_000


def _max_payload(rpc: Any) -> int:
    return int(getattr(rpc.nc, "max_payload", 0) or 1024 * 1024)


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _too_large_row(line: int) -> ApiError:
    return ApiError(413, "row_too_large", f"row {line} alone exceeds the message size limit",
                    details={"line": line})


def _json_chunks(rows: list[Any], budget: int) -> list[tuple[int, Any]]:
    """(offset, rows): JSON rows are numbered from 1, so a part's row n is offset + n."""
    chunks: list[tuple[int, Any]] = []
    start, size = 0, 2
    for i, row in enumerate(rows):
        n = _size(row) + 1
        if n + 2 > budget:
            raise _too_large_row(i + 1)
        if (size + n > budget or i - start >= MAX_ROWS_PER_PART) and i > start:
            chunks.append((start, rows[start:i]))
            start, size = i, 2
        size += n
    chunks.append((start, rows[start:]))
    return chunks


def _tsv_chunks(text: str, budget: int) -> list[tuple[int, Any]]:
    """(offset, text): every part repeats the header; a part's line n is offset + n."""
    if _size(text) <= budget and text.count("\n") <= MAX_ROWS_PER_PART:
        return [(0, text)]
    header, *lines = text.splitlines()
    base = _size(header) + 2
    chunks: list[tuple[int, Any]] = []
    start, size = 0, base
    for i, line in enumerate(lines):
        n = _size(line)              # the line, its escaped newline, less the quotes: <= this
        if base + n > budget:
            raise _too_large_row(i + 2)
        if (size + n > budget or i - start >= MAX_ROWS_PER_PART) and i > start:
            chunks.append((start, "\n".join([header, *lines[start:i]]) + "\n"))
            start, size = i, base
        size += n
    chunks.append((start, "\n".join([header, *lines[start:]]) + "\n"))
    return chunks


async def _upload_in_parts(rpc: RpcClient, actor: Actor, pool_id: str, fmt: Literal["json", "tsv"],
                           chunks: list[tuple[int, Any]],
                           all_or_nothing: bool) -> tasks_rpc.UploadResult:
    total = tasks_rpc.UploadResult(created=0, control_tasks=0, task_ids=[], errors=[])
    for offset, part in chunks:
        try:
            res = await rpc.call(tasks_rpc.UPLOAD_TASKS, tasks_rpc.TasksUpload(
                actor=actor, pool_id=pool_id, format=fmt, content=part,
                all_or_nothing=all_or_nothing), timeout_s=60)
        except RpcCallError as exc:
            if total.created == 0:
                raise
            e = exc.error
            raise ApiError(e.status, e.code, f"{e.message} (the earlier parts of this upload "
                                             f"were created: {total.created} tasks)",
                           details={"created": total.created, "task_ids": total.task_ids,
                                    "service_details": e.details}) from exc
        total.created += res.created
        total.control_tasks += res.control_tasks
        total.task_ids.extend(res.task_ids)
        for err in res.errors:
            # 0 = the whole upload, 1 = the TSV header: the same in every part.
            line = err.line + offset if err.line > (1 if fmt == "tsv" else 0) else err.line
            shifted = tasks_rpc.RowError(line=line, error=err.error)
            if shifted not in total.errors:    # header errors repeat per part
                total.errors.append(shifted)
    return total


_EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "tsv": "text/tab-separated-values; charset=utf-8",
                 "json": "application/json"}


@router.get("/admin/pools/{pool_id}/results", tags=["admin: pools"],
            summary="Download a pool's results as a CSV, TSV or JSON file",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, "text/tab-separated-values": {},
                                         "application/json": {}},
                             "description": "the results file"}})
async def export_results(actor: AdminActor, rpc: Rpc, pool_id: Id,
                         format: Literal["csv", "tsv", "json"] = "csv",
                         status_: Annotated[tasks_rpc.AssignmentStatus | None,
                                            Query(alias="status")] = None,
) -> Response:
    """The file comes from the tasks service in pages (each one bus message) and goes out
    as one streamed download; errors of the first page (no such pool, ...) are answered
    as usual, before anything is sent."""

    async def page(cursor: str | None) -> tasks_rpc.ExportedResults:
        return await rpc.call(tasks_rpc.EXPORT_RESULTS, tasks_rpc.ExportResults(
            actor=actor, pool_id=pool_id, format=format, status=status_, cursor=cursor),
            timeout_s=60)

    first = await page(None)
    json_array = format == "json"

    def inner(p: tasks_rpc.ExportedResults) -> str:  # a JSON page without its brackets
        return p.content.strip()[1:-1] if json_array else p.content

    async def body() -> AsyncIterator[bytes]:
        yield (("[" if json_array else "") + inner(first)).encode()
        sent_rows, cursor = first.rows, first.next_cursor
        while cursor is not None:
            try:
                p = await page(cursor)
            except RpcCallError as exc:  # the download is cut short: say so in the log
                log.error("results export of %s stopped after %d rows: %s", pool_id,
                          sent_rows, exc.error.message)
                raise
            if p.rows:
                yield ((", " if json_array and sent_rows else "") + inner(p)).encode()
            sent_rows, cursor = sent_rows + p.rows, p.next_cursor
        if json_array:
            yield b"]"

    filename = "".join(c for c in first.filename if c.isalnum() or c in "._-") or \
        f"results.{format}"
    return StreamingResponse(body(), media_type=_EXPORT_TYPES[format], headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Result-Rows": str(first.total_rows if first.total_rows is not None
                             else first.rows)})


@router.get("/admin/trust-limits", response_model=tasks_rpc.TrustLimits,
            tags=["admin: workers"], summary="Take limits per trust level")
async def get_trust_limits(actor: AdminActor, rpc: Rpc) -> tasks_rpc.TrustLimits:
    return await rpc.call(tasks_rpc.GET_TRUST_LIMITS, tasks_rpc.TrustLimitsGet(actor=actor))


@router.put("/admin/trust-limits", response_model=tasks_rpc.TrustLimits,
            tags=["admin: workers"], summary="Set one trust level's take limits")
async def set_trust_limits(actor: AdminActor, rpc: Rpc, body: tasks_rpc.TrustLevelLimits,
                           security: Security, address: Address) -> tasks_rpc.TrustLimits:
    result = await rpc.call(tasks_rpc.SET_TRUST_LIMITS, tasks_rpc.TrustLimitsSet(
        actor=actor, limits=body))
    await security.audit.record("trust_limits.changed", actor.user_id, body.level,
                                body.model_dump(mode="json"), address=address)
    return result


@router.get("/admin/workers/{worker_id}", response_model=tasks_rpc.WorkerProfile,
            tags=["admin: workers"], summary="A worker's trust level, skills and restrictions")
async def worker_profile(actor: AdminActor, rpc: Rpc, worker_id: Id) -> tasks_rpc.WorkerProfile:
    return await rpc.call(tasks_rpc.GET_WORKER_PROFILE, tasks_rpc.WorkerProfileGet(
        actor=actor, worker_id=worker_id))
