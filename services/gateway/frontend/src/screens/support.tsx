import { useState } from "preact/hooks";
import { get, meStore, post } from "../api";
import { t, type Key, has } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import type { Page, Ticket } from "../types";
import { Alert, Badge, Button, Form, LoadState, Markdown, Section, Table, TextField, When, useAction, useLoad } from "../ui";

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

export function Tickets({ filter }: { filter?: (tk: Ticket) => boolean }) {
  const tickets = useLoad(() => get<Page<Ticket>>("/support/tickets?limit=200"));
  const items = (tickets.data?.items ?? []).filter(filter ?? (() => true));
  return (
    <>
      <LoadState loaded={tickets} empty={!!tickets.data && items.length === 0} />
      {items.length > 0 && (
        <Table rows={items} rowKey={(tk) => tk.ticket_id} columns={[
          { label: t("common.when"), cell: (tk) => <When at={tk.created_at} /> },
          { label: t("support.kind"), cell: (tk) => ticketKind(tk.kind) },
          { label: t("support.subject"), cell: (tk) => tk.subject },
          { label: t("support.text"), cell: (tk) => <span class="pre">{tk.text}</span> },
          { label: t("common.status"), cell: (tk) => <Badge value={tk.status === "open" ? "pending" : "ok"} text={has(`ticket.${tk.status}`) ? t(`ticket.${tk.status}` as Key) : tk.status} /> },
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
        <Tickets key={version} />
      </Section>
      <Section title={t("support.chat")}>
        <p class="alert alert-info" role="status">{t("support.chat_not_yet")}</p>
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/support", access: "any", title: "support.title", component: Support,
  nav: { group: "help", order: 3 },
};
export default screen;
