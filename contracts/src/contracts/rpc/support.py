"""Support service RPCs: tickets (problem reports) and the FAQ assistant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.money import ShareBps
from contracts.rpc import ADMIN, ROLES, STAFF, WORKER, Page, RpcRequest, rpc
from contracts.rpc.rules import RuleParams
from contracts.rpc.tasks import MAX_ASSIGNMENT_TIMEOUT_S, AssignmentOwner, NoNul, TrustLevel

Lang = Literal["ru", "en"]
ChangeId = Annotated[str, Field(min_length=1, max_length=64), NoNul]


class TicketCreate(RpcRequest):
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=10_000)


TicketStatus = Literal["open", "answered", "closed"]


class Ticket(BaseModel):
    ticket_id: str
    user_id: str
    kind: str
    subject: str
    text: str
    status: TicketStatus
    assignment_id: str | None = None
    pool_id: str | None = None
    assigned_to: str | None = Field(None, description="the manager in charge, if any")
    created_at: datetime
    updated_at: datetime | None = None
    first_answered_at: datetime | None = None
    closed_at: datetime | None = None


class TicketList(RpcRequest):
    page: Page = Page()
    status: TicketStatus | None = None
    pool_id: str | None = Field(None, max_length=64)
    kind: str | None = Field(None, max_length=64, description=(
        "exact kind (question, task_report:broken_link) or a prefix ending in ':' "
        "(task_report:)"))
    assigned_to: str | None = Field(None, max_length=64)
    min_age_s: int | None = Field(None, ge=0, le=10 * 365 * 86400,
                                  description="only tickets opened at least this long ago")
    max_age_s: int | None = Field(None, ge=0, le=10 * 365 * 86400,
                                  description="only tickets opened at most this long ago")


class Tickets(BaseModel):
    items: list[Ticket]
    total: int


class AskAssistant(RpcRequest):
    question: str = Field(min_length=2, max_length=2000)
    lang: Lang | None = Field(None, description="null: detected from the question")
    hand_over: bool = Field(False, description="open a ticket for a person when no article is "
                                               "confident (the assistant screen asks for it)")


class Citation(BaseModel):
    article_id: str
    title: str
    lang: Lang


class AssistantAnswer(BaseModel):
    """An article of the knowledge base (always cited), or the hand-over to a person."""

    answered: bool
    question: str | None = Field(None, description="the cited article's title")
    answer: str | None = Field(None, description="the article's Markdown text")
    score: float = 0.0
    confidence: float = 0.0
    threshold: float = 0.0
    lang: Lang = "en"
    citation: Citation | None = None
    diagnose: bool = Field(False, description="the article about refused takes: the gateway "
                                              "adds this worker's diagnosis")
    generated: str | None = Field(None, description="the article rephrased by the optional "
                                                    "generator (the citation still holds)")
    ticket_id: str | None = Field(None, description="the ticket opened for a person")
    suggestion: str | None = None


class ArticleList(RpcRequest):
    lang: Lang = "ru"


class ArticleSummary(BaseModel):
    article_id: str
    title: str
    lang: Lang


class Articles(BaseModel):
    items: list[ArticleSummary]


class ArticleGet(RpcRequest):
    article_id: str = Field(min_length=1, max_length=64)
    lang: Lang = "ru"


class Article(ArticleSummary):
    markdown: str


CREATE_TICKET = rpc("support", "create_ticket", TicketCreate, Ticket, "Open a support ticket",
    roles=ROLES)
LIST_TICKETS = rpc("support", "list_tickets", TicketList, Tickets,
                   "Tickets: a worker sees their own, managers and admins see all",
    roles=ROLES)
ASK = rpc("support", "ask", AskAssistant, AssistantAnswer,
          "Answer a frequent question from the knowledge base",
    roles=ROLES)


# ------------------------------------------------------------------ ticket threads


class TicketMessage(BaseModel):
    message_id: str
    ticket_id: str
    author_id: str
    author_role: str
    from_staff: bool
    text: str
    created_at: datetime


class TicketRef(RpcRequest):
    ticket_id: str = Field(min_length=1, max_length=36)


class TicketThread(BaseModel):
    ticket: Ticket
    messages: list[TicketMessage]


class TicketReply(RpcRequest):
    ticket_id: str = Field(min_length=1, max_length=36)
    text: str = Field(min_length=1, max_length=10_000)


class TicketAssign(RpcRequest):
    ticket_id: str = Field(min_length=1, max_length=36)
    assignee_id: str | None = Field(None, min_length=1, max_length=64,
                                    description="a manager's user id; null = unassign")


class SupportStatsRequest(RpcRequest):
    pass


class SupportStats(BaseModel):
    open: int
    answered: int
    closed: int
    median_first_answer_s: float | None = Field(
        None, description="median time from opening to the first staff answer; null before any")


GET_TICKET = rpc("support", "get_ticket", TicketRef, TicketThread,
                 "A ticket and its thread (its owner, managers and admins)", roles=ROLES)
REPLY_TICKET = rpc("support", "reply_ticket", TicketReply, TicketThread,
                   "Add a message: staff answer (answered), the owner writes (reopens)",
                   roles=ROLES)
CLOSE_TICKET = rpc("support", "close_ticket", TicketRef, Ticket,
                   "Close a ticket (staff, or its owner)", roles=ROLES)
ASSIGN_TICKET = rpc("support", "assign_ticket", TicketAssign, Ticket,
                    "Put a manager in charge of a ticket", roles=STAFF)
SUPPORT_STATS = rpc("support", "stats", SupportStatsRequest, SupportStats,
                    "Ticket counts by state and the median first-answer time", roles=STAFF)


# ------------------------------------------------------------------ chat

ThreadKind = Literal["assignment", "pool"]
CHAT_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


class ChatThreadRef(RpcRequest):
    kind: ThreadKind
    ref: str = Field(pattern=CHAT_ID, description="the assignment id or the pool id")
    owner: AssignmentOwner | None = Field(
        None, description="an assignment thread's assignment, as the tasks service told the "
        "gateway (support keeps no copy of every take); none for a pool")


class ChatList(ChatThreadRef):
    limit: int = Field(100, ge=1, le=500)


class ChatPost(ChatThreadRef):
    text: str = Field(min_length=1, max_length=2000)


class ChatMessage(BaseModel):
    message_id: str
    kind: ThreadKind
    ref: str
    author_id: str
    author_role: str
    text: str = Field(description="empty when a moderator deleted the message")
    deleted: bool = False
    created_at: datetime


class ChatMessages(BaseModel):
    kind: ThreadKind
    ref: str
    worker_id: str | None = Field(None, description="the assignment's worker (task chat)")
    items: list[ChatMessage] = Field(description="oldest first")
    muted_until: datetime | None = Field(None, description="when the caller may write again")


class ChatThreadsRequest(RpcRequest):
    limit: int = Field(50, ge=1, le=200)


class ChatThreadSummary(BaseModel):
    kind: ThreadKind
    ref: str
    worker_id: str | None = None
    pool_id: str | None = None
    last_at: datetime | None = None
    messages: int = 0


class ChatThreads(BaseModel):
    threads: list[ChatThreadSummary] = Field(description="threads with messages, newest first")
    pools: list[str] = Field(description="pools whose general chat is open")


class ChatDelete(RpcRequest):
    message_id: str = Field(min_length=1, max_length=36)


class ChatMute(RpcRequest):
    user_id: str = Field(min_length=1, max_length=64)
    minutes: int = Field(ge=1, le=30 * 24 * 60)
    reason: str = Field("", max_length=500)


class ChatUnmute(RpcRequest):
    user_id: str = Field(min_length=1, max_length=64)


class ChatMuteState(BaseModel):
    user_id: str
    muted_until: datetime | None


LIST_CHAT = rpc("support", "chat_list", ChatList, ChatMessages,
                "A chat thread's messages (task chat: its worker and staff; pool chat: all)",
                roles=ROLES)
POST_CHAT = rpc("support", "chat_post", ChatPost, ChatMessage,
                "Post to a chat thread (refused when muted or sending too fast)", roles=ROLES)
CHAT_THREADS = rpc("support", "chat_threads", ChatThreadsRequest, ChatThreads,
                   "The caller's task-chat threads (staff: all) and the open pool chats",
                   roles=ROLES)
DELETE_CHAT = rpc("support", "chat_delete", ChatDelete, ChatMessage,
                  "Moderation: hide a chat message", roles=STAFF)
MUTE_CHAT = rpc("support", "chat_mute", ChatMute, ChatMuteState,
                "Moderation: mute a user in every chat for a time", roles=STAFF)
UNMUTE_CHAT = rpc("support", "chat_unmute", ChatUnmute, ChatMuteState,
                  "Moderation: lift a user's mute", roles=STAFF)


# --------------------------------------------------------------------------- leads

LeadStatus = Literal["new", "contacted", "won", "lost"]


class LeadSubmit(RpcRequest):
    """A prospective requester's message from the public form. The gateway sets ``address``
    (the client address) and calls as itself; ``website`` is the honeypot field a person
    never sees: a filled one is dropped silently."""

    address: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    contact: str = Field(min_length=3, max_length=200)
    company: str = Field("", max_length=200)
    message: str = Field(min_length=1, max_length=5000)
    website: str = Field("", max_length=500)
    captcha_id: str | None = Field(None, max_length=64)
    captcha_answer: str | None = Field(None, max_length=32)


class LeadAccepted(BaseModel):
    accepted: bool = True


class Lead(BaseModel):
    lead_id: str
    name: str
    contact: str
    company: str
    message: str
    status: LeadStatus
    notes: str
    created_at: datetime
    updated_at: datetime


class LeadList(RpcRequest):
    status: LeadStatus | None = None
    page: Page = Page()


class Leads(BaseModel):
    items: list[Lead]
    total: int


class LeadUpdate(RpcRequest):
    lead_id: str = Field(min_length=1, max_length=36)
    status: LeadStatus | None = None
    notes: str | None = Field(None, max_length=10_000)


# --------------------------------------------------------------------------- legal

LegalFormat = Literal["html", "markdown"]


class LegalList(RpcRequest):
    lang: Lang = "ru"


class LegalSummary(BaseModel):
    doc_id: str
    lang: Lang
    title: str
    version: str
    effective: str


class LegalDocs(BaseModel):
    items: list[LegalSummary]


class LegalGet(RpcRequest):
    doc_id: str = Field(min_length=1, max_length=64)
    lang: Lang = "ru"


class LegalDoc(LegalSummary):
    markdown: str
    html: str


class LegalPdf(BaseModel):
    filename: str
    version: str
    pdf_base64: str


class TermsStatusGet(RpcRequest):
    lang: Lang = "ru"


class TermsStatus(BaseModel):
    doc_id: str
    current_version: str
    accepted_version: str | None
    accepted_at: datetime | None
    needs_acceptance: bool


class TermsAccept(RpcRequest):
    version: str = Field(min_length=1, max_length=32,
                         description="the version the worker read: refused if not current")
    lang: Lang = "ru"


ASSISTANT_ARTICLES = rpc("support", "assistant_articles", ArticleList, Articles,
                         "The knowledge base's articles in one language", roles=ROLES)
ASSISTANT_ARTICLE = rpc("support", "assistant_article", ArticleGet, Article,
                        "One article of the knowledge base", roles=ROLES)
SUBMIT_LEAD = rpc("support", "submit_lead", LeadSubmit, LeadAccepted,
                  "A lead from the public form (the gateway calls as itself): rate-limited "
                  "per address, honeypot, captcha after a few tries", roles=ADMIN)
LIST_LEADS = rpc("support", "list_leads", LeadList, Leads, "Leads, newest first (admin)",
                 roles=ADMIN)
UPDATE_LEAD = rpc("support", "update_lead", LeadUpdate, Lead,
                  "Set a lead's status or notes (admin)", roles=ADMIN)
LIST_LEGAL = rpc("support", "list_legal", LegalList, LegalDocs,
                 "The current legal documents in one language", roles=ROLES)
GET_LEGAL = rpc("support", "get_legal", LegalGet, LegalDoc,
                "One legal document as Markdown and HTML", roles=ROLES)
GET_LEGAL_PDF = rpc("support", "get_legal_pdf", LegalGet, LegalPdf,
                    "One legal document as PDF (base64)", roles=ROLES)
TERMS_STATUS = rpc("support", "terms_status", TermsStatusGet, TermsStatus,
                   "Whether the calling worker accepted the current terms", roles=WORKER)
ACCEPT_TERMS = rpc("support", "accept_terms", TermsAccept, TermsStatus,
                   "The calling worker accepts the current terms (recorded once)", roles=WORKER)


# --------------------------------------------------------------------------- erasure

class EraseUser(RpcRequest):
    """Remove the texts a user wrote (tickets, their messages, chat messages); the records
    stay, with the user's opaque id, so threads and counts keep their shape."""

    user_id: str = Field(min_length=1, max_length=64)


class Erased(BaseModel):
    user_id: str
    tickets: int = Field(description="tickets whose subject and text were removed")
    ticket_messages: int
    chat_messages: int
    terms_acceptances: int = Field(description="kept: the record that terms were accepted")


ERASE_USER = rpc("support", "erase_user", EraseUser, Erased,
                 "Admin: remove a user's texts for an erasure request (idempotent)",
                 roles=ADMIN)

# ------------------------------------------------------- configuration changes ("safe mode")
# A change is a typed new value for one platform setting, kept with the value the owning
# service had when it was proposed. Support keeps the proposals; the gateway reads and
# applies the settings through their owners (only it calls services) and records here
# what became of each one.

ChangeKind = Literal["pool.assignment_timeout_s", "pool.overlap", "trust_limits",
                     "rule.params", "worker_share"]
ChangeState = Literal["proposed", "applied", "rejected", "failed", "stale"]
ChangeSource = Literal["staff", "assistant", "diagnostics"]
ChangeOutcome = Literal["applied", "rejected", "failed", "stale"]
MONEY_KINDS: frozenset[str] = frozenset({"worker_share"})


class TrustLimitsValue(BaseModel):
    """A trust level's limits (the level is the change's target)."""

    model_config = ConfigDict(extra="forbid")

    max_active: int = Field(ge=0, le=10_000)
    min_pause_s: float = Field(ge=0, le=86_400, allow_inf_nan=False)
    assignment_timeout_s: int | None = Field(None, ge=1, le=MAX_ASSIGNMENT_TIMEOUT_S)


class _Setting(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolTimeoutSetting(_Setting):
    kind: Literal["pool.assignment_timeout_s"]
    pool_id: ChangeId
    value: int = Field(ge=1, le=MAX_ASSIGNMENT_TIMEOUT_S, strict=True,
                       description="seconds a worker has to submit")


class PoolOverlapSetting(_Setting):
    kind: Literal["pool.overlap"]
    pool_id: ChangeId
    value: int = Field(ge=1, le=1000, strict=True,
                       description="answers per task (for tasks uploaded afterwards)")


class TrustLimitsSetting(_Setting):
    kind: Literal["trust_limits"]
    level: TrustLevel
    value: TrustLimitsValue


class RuleParamsSetting(_Setting):
    kind: Literal["rule.params"]
    rule_id: ChangeId
    value: RuleParams


class WorkerShareSetting(_Setting):
    kind: Literal["worker_share"]
    pool_id: ChangeId | None = Field(None, description="null: the default share")
    value: ShareBps


Setting = Annotated[PoolTimeoutSetting | PoolOverlapSetting | TrustLimitsSetting
                    | RuleParamsSetting | WorkerShareSetting, Field(discriminator="kind")]


def setting_target(setting: PoolTimeoutSetting | PoolOverlapSetting | TrustLimitsSetting
                   | RuleParamsSetting | WorkerShareSetting) -> str | None:
    """The one thing a setting belongs to: a pool, a trust level, a rule; None = default."""
    if isinstance(setting, TrustLimitsSetting):
        return setting.level
    if isinstance(setting, RuleParamsSetting):
        return setting.rule_id
    return setting.pool_id


class ProposeChange(RpcRequest):
    """Store a proposal; ``before`` is the owner's current value the gateway read."""

    setting: Setting
    before: Any = Field(description="the setting's current value, read from its owner")
    reason: str = Field("", max_length=2000)
    source: ChangeSource = "staff"
    patch: bool = Field(False, description="an admin's manual patch: applied at once")
    reverts: str | None = Field(None, max_length=36,
                                description="the applied change this one undoes")


class Change(BaseModel):
    change_id: str
    kind: ChangeKind
    target: str | None = Field(description="pool id, trust level or rule id; null: default")
    before: Any = Field(description="the value when proposed")
    after: Any = Field(description="the proposed value")
    money: bool = Field(description="a money setting: confirming needs the MFA step-up")
    state: ChangeState
    source: ChangeSource
    patch: bool
    reason: str
    reverts: str | None = None
    reverted_by: str | None = Field(None, description="the change that undid this one")
    proposed_by: str
    proposed_role: str
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    current: Any = Field(None, description="a stale change: the value found at confirmation")
    error: dict[str, Any] | None = Field(None, description="a failed change: the owner's "
                                                           "refusal (code, message)")


class ChangeList(RpcRequest):
    state: ChangeState | None = None
    kind: ChangeKind | None = None
    page: Page = Page()


class Changes(BaseModel):
    items: list[Change]
    total: int


class ChangeRef(RpcRequest):
    change_id: str = Field(min_length=1, max_length=36)


class DecideChange(RpcRequest):
    """Record what became of a proposed change (the gateway, after asking the owner)."""

    change_id: str = Field(min_length=1, max_length=36)
    outcome: ChangeOutcome
    reason: str = Field("", max_length=2000)
    current: Any = None
    error: dict[str, Any] | None = None


PROPOSE_CHANGE = rpc("support", "propose_change", ProposeChange, Change,
                     "Store a proposed configuration change (patch: admin only)", roles=STAFF)
LIST_CHANGES = rpc("support", "list_changes", ChangeList, Changes,
                   "Configuration changes, newest first (staff)", roles=STAFF)
GET_CHANGE = rpc("support", "get_change", ChangeRef, Change, "One configuration change (staff)",
                 roles=STAFF)
DECIDE_CHANGE = rpc("support", "decide_change", DecideChange, Change,
                    "Record a proposed change as applied, rejected, failed or stale (admin)",
                    roles=ADMIN)

# ---------------------------------------------------------------------- webhooks
# A requester's (today: an admin's) URL subscribed to event kinds. Each delivery leaves from
# the support service's delivery table with retries and exponential backoff, signed with
# HMAC-SHA256 over "<timestamp>.<body>" (headers X-Webhook-Timestamp, X-Webhook-Signature:
# "v1=<hex>"); the secret is shown once, when the subscription is made.

WebhookKind = Literal["task.accepted", "task.rejected", "pool.closed", "payout.changed",
                      "result.ready"]
WEBHOOK_KINDS: tuple[str, ...] = ("task.accepted", "task.rejected", "pool.closed",
                                  "payout.changed", "result.ready")
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookCreate(RpcRequest):
    url: str = Field(min_length=8, max_length=2000, pattern=r"^[^\s\x00-\x1f\x7f]+$",
                     description="http(s) URL; loopback and private addresses are refused "
                                 "unless the platform allows them (tests)")
    kinds: list[WebhookKind] = Field(min_length=1, max_length=len(WEBHOOK_KINDS))
    description: str = Field("", max_length=200)


class Webhook(BaseModel):
    subscription_id: str
    url: str
    kinds: list[WebhookKind]
    description: str
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="shown only now: verify X-Webhook-Signature with it")


class Webhooks(BaseModel):
    items: list[Webhook]
    total: int


class WebhookList(RpcRequest):
    page: Page = Page()


class WebhookRef(RpcRequest):
    subscription_id: str = Field(min_length=1, max_length=36)


class DeliveryList(RpcRequest):
    subscription_id: str = Field(min_length=1, max_length=36)
    status: DeliveryStatus | None = None
    page: Page = Page()


class DeliveryAttempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int


class WebhookDelivery(BaseModel):
    delivery_id: str
    subscription_id: str
    event_id: str
    kind: WebhookKind
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    log: list[DeliveryAttempt]


class WebhookDeliveries(BaseModel):
    items: list[WebhookDelivery]
    total: int


class Redeliver(RpcRequest):
    delivery_id: str = Field(min_length=1, max_length=36)


CREATE_WEBHOOK = rpc("support", "create_webhook", WebhookCreate, WebhookCreated,
                     "Subscribe a URL to event kinds (admin; the secret is shown once)",
                     roles=ADMIN)
LIST_WEBHOOKS = rpc("support", "list_webhooks", WebhookList, Webhooks,
                    "Webhook subscriptions, newest first (admin)", roles=ADMIN)
DISABLE_WEBHOOK = rpc("support", "disable_webhook", WebhookRef, Webhook,
                      "Stop a subscription: no new deliveries (admin)", roles=ADMIN)
LIST_DELIVERIES = rpc("support", "list_deliveries", DeliveryList, WebhookDeliveries,
                      "A subscription's deliveries with every attempt (admin)", roles=ADMIN)
REDELIVER = rpc("support", "redeliver", Redeliver, WebhookDelivery,
                "Send a delivery again now, whatever its status (admin)", roles=ADMIN)
