import { useState } from "preact/hooks";
import { get, meStore, post } from "../api";
import { t, type Key, has } from "../i18n";
import { href, type Screen } from "../router";
import { loadNames } from "../staff";
import { useStore } from "../store";
import type { Page, Ticket, TicketStatus } from "../types";
import { Alert, Badge, Button, CheckField, Form, LoadState, Markdown, Section, SelectField, Table, TextField, When, useAction, useLoad } from "../ui";

const STATUS_TONE: Record<TicketStatus, string> = { open: "pending", answered: "ok", closed: "archived" };

export function TicketStatusBadge({ status }: { status: TicketStatus }) {
  return <Badge value={STATUS_TONE[status] ?? status} text={has(`ticket.${status}`) ? t(`ticket.${status}` as Key) : status} />;
}

interface TicketFilter { status: string; kind: string; pool: string; age: string; mine: boolean }
const NO_FILTER: TicketFilter = { status: "", kind: "", pool: "", age: "", mine: false };
// age choices: "" any, "-86400" opened within a day, "86400" older than a day, ...
const AGES = ["", "-3600", "-86400", "3600", "86400", "604800"];

function query(f: TicketFilter): string {
  const q = new URLSearchParams({ limit: "200" });
  if (f.status) q.set("status", f.status);
  if (f.kind) q.set("kind", f.kind);
  if (f.pool.trim()) q.set("pool_id", f.pool.trim());
  if (f.age) q.set(f.age.startsWith("-") ? "max_age_s" : "min_age_s", f.age.replace("-", ""));
  const me = meStore.get();
  if (f.mine && me) q.set("assigned_to", me.user_id);
  return q.toString();
}

function Filters({ value, onChange }: { value: TicketFilter; onChange: (f: TicketFilter) => void }) {
  const names = useLoad(loadNames);
  return (
    <div class="row filters" role="group" aria-label={t("support.filters")}>
      <SelectField label={t("common.status")} name="filter_status" value={value.status}
        onChange={(v) => onChange({ ...value, status: v })}
        options={[["", t("support.any")], ["open", t("ticket.open")], ["answered", t("ticket.answered")], ["closed", t("ticket.closed")]]} />
      <SelectField label={t("support.kind")} name="filter_kind" value={value.kind}
        onChange={(v) => onChange({ ...value, kind: v })}
        options={[["", t("support.any")], ["task_report:", t("support.kind.report")], ["question", t("support.kind.question")]]} />
      <SelectField label={t("common.pool")} name="filter_pool" value={value.pool}
        onChange={(v) => onChange({ ...value, pool: v })}
        options={[["", t("support.any")], ...(names.data?.pools ?? []).map((p) => [p.pool_id, p.name] as [string, string])]} />
      <SelectField label={t("support.age")} name="filter_age" value={value.age}
        onChange={(v) => onChange({ ...value, age: v })}
        options={AGES.map((a) => [a, t(`support.age.${a || "any"}` as Key)] as [string, string])} />
      <CheckField label={t("support.mine")} checked={value.mine} onChange={(v) => onChange({ ...value, mine: v })} />
    </div>
  );
}

export function ticketKind(kind: string): string {
  if (kind.startsWith("task_report:")) {
    const reason = kind.slice("task_report:".length);
    const key = `report.${reason}`;
    return `${t("support.kind.report")}: ${has(key) ? t(key as Key) : reason}`;
  }
  const key = `support.kind.${kind}`;
  return has(key) ? t(key as Key) : kind;
}

function Ask() {
  const [question, setQuestion] = useState("");
  const [answer, setAnswer] = useState<{ answered: boolean; question?: string; answer?: string; suggestion?: string } | null>(null);
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    setAnswer(await post("/support/ask", { question: question.trim() }));
  });
  return (
    <Section title={t("support.ask")}>
      <p>{t("support.ask_explain")}</p>
      <Form onSubmit={() => void submit()} label={t("support.ask")}>
        <TextField label={t("support.question")} value={question} onInput={setQuestion} name="question" maxLength={2000} />
        <Button type="submit" kind="primary" busy={busy}>{t("support.ask_submit")}</Button>
      </Form>
      <Alert notice={notice} />
      {answer && (answer.answered && answer.answer
        ? <div class="answer"><p class="muted">{answer.question}</p><Markdown text={answer.answer} /></div>
        : <p class="alert alert-info" role="status">{t("support.no_answer")}</p>)}
    </Section>
  );
}

function NewTicket({ onDone }: { onDone: () => void }) {
  const [subject, setSubject] = useState("");
  const [text, setText] = useState("");
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    await post("/support/tickets", { subject: subject.trim(), text: text.trim() });
    setSubject(""); setText("");
    onDone();
    return t("support.ticket_sent");
  });
  return (
    <Section title={t("support.new_ticket")}>
      <Form onSubmit={() => void submit()} label={t("support.new_ticket")}>
        <TextField label={t("support.subject")} value={subject} onInput={setSubject} name="subject" maxLength={200} />
        <TextField label={t("support.text")} value={text} onInput={setText} multiline rows={4} name="text" maxLength={10000} />
        <Button type="submit" kind="primary" busy={busy}>{t("support.send")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

export function Tickets({ kind, filters }: { kind?: string; filters?: boolean }) {
  const [f, setF] = useState<TicketFilter>({ ...NO_FILTER, kind: kind ?? "" });
  const q = query(f);
  const tickets = useLoad(() => get<Page<Ticket>>(`/support/tickets?${q}`), [q], ["tickets"]);
  const items = tickets.data?.items ?? [];
  return (
    <>
      {filters && <Filters value={f} onChange={setF} />}
      <LoadState loaded={tickets} empty={!!tickets.data && items.length === 0} />
      {items.length > 0 && (
        <Table rows={items} rowKey={(tk) => tk.ticket_id} columns={[
          { label: t("common.when"), cell: (tk) => <When at={tk.created_at} /> },
          { label: t("support.kind"), cell: (tk) => ticketKind(tk.kind) },
          { label: t("support.subject"), cell: (tk) => <a href={href(`/support/tickets/${tk.ticket_id}`)}>{tk.subject}</a> },
          { label: t("support.text"), cell: (tk) => <span class="pre">{tk.text}</span> },
          { label: t("common.status"), cell: (tk) => <TicketStatusBadge status={tk.status} /> },
        ]} />
      )}
    </>
  );
}

function Support() {
  const me = useStore(meStore);
  const [version, setVersion] = useState(0);
  return (
    <>
      <p class="lead">{t("support.explain")}</p>
      <Ask />
      <NewTicket onDone={() => setVersion(version + 1)} />
      <Section title={me?.role === "worker" ? t("support.my_tickets") : t("support.all_tickets")}>
        <Tickets key={version} filters={me?.role !== "worker"} />
      </Section>
      <Section title={t("support.chat")}>
        <p>{t("support.chat_explain")}</p>
        <a class="btn btn-secondary" href={href("/chat")}>{t("chat.open")}</a>
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/support", access: "any", title: "support.title", component: Support,
  nav: { group: "help", order: 3 },
};
export default screen;
