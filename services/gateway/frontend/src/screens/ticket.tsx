// One ticket's thread: the owner reads the answers and writes back (which reopens it);
// managers and admins answer, take it, and close it.
import { useState } from "preact/hooks";
import { api, get, meStore, post } from "../api";
import { t } from "../i18n";
import { href, type Screen } from "../router";
import { useStore } from "../store";
import type { TicketThread } from "../types";
import { Alert, Button, Facts, Form, LoadState, Section, TextField, When, useAction, useLoad } from "../ui";
import { TicketStatusBadge, ticketKind } from "./support";

function Messages({ thread, me }: { thread: TicketThread; me: string | undefined }) {
  return (
    <ol class="thread" aria-label={t("ticket.thread")}>
      {thread.messages.map((m) => (
        <li key={m.message_id} class={`message${m.from_staff ? " from-staff" : ""}`}>
          <p class="message-head">
            <strong>{m.from_staff ? t("ticket.from_support") : m.author_id === me ? t("ticket.from_me") : t("ticket.from_user")}</strong>
            {" · "}<When at={m.created_at} />
          </p>
          <p class="pre">{m.text}</p>
        </li>
      ))}
    </ol>
  );
}

function TicketScreen({ params }: { params: Record<string, string> }) {
  const me = useStore(meStore);
  const id = params.id;
  const loaded = useLoad(() => get<TicketThread>(`/support/tickets/${encodeURIComponent(id)}`), [id], ["tickets"]);
  const [text, setText] = useState("");
  const [run, busy, notice] = useAction();
  const thread = loaded.data;
  const staff = me?.role === "manager" || me?.role === "admin";
  const owner = !!thread && thread.ticket.user_id === me?.user_id;
  const send = () => run(async () => {
    if (!text.trim()) return;
    await post(`/support/tickets/${encodeURIComponent(id)}/messages`, { text: text.trim() });
    setText("");
    await loaded.reload();
    return owner ? t("ticket.sent") : t("ticket.answer_sent");
  });
  const close = () => run(async () => {
    await post(`/support/tickets/${encodeURIComponent(id)}/close`);
    await loaded.reload();
    return t("ticket.closed_done");
  });
  const take = () => run(async () => {
    await api("PUT", `/support/tickets/${encodeURIComponent(id)}/assignee`, { body: { assignee_id: me?.user_id } });
    await loaded.reload();
    return t("ticket.taken");
  });
  const tk = thread?.ticket;
  return (
    <>
      <p><a href={href("/support")}>← {t("ticket.back")}</a></p>
      <LoadState loaded={loaded} />
      {thread && tk && (
        <>
          <Section title={tk.subject}>
            <Facts items={[
              [t("common.status"), <TicketStatusBadge status={tk.status} />],
              [t("support.kind"), ticketKind(tk.kind)],
              [t("ticket.opened"), <When at={tk.created_at} />],
              ...(staff ? [[t("ticket.assignee"), tk.assigned_to ? (tk.assigned_to === me?.user_id ? t("ticket.assignee_me") : tk.assigned_to) : "—"] as [string, string]] : []),
            ]} />
            {tk.status === "answered" && owner && <p class="alert alert-success" role="status">{t("ticket.answered_explain")}</p>}
            {tk.status === "closed" && <p class="alert alert-info" role="status">{t("ticket.closed_explain")}</p>}
          </Section>
          <Section title={t("ticket.thread")}>
            <Messages thread={thread} me={me?.user_id} />
            {(owner || tk.status !== "closed") && (
              <Form onSubmit={() => void send()} label={t("ticket.reply_form")}>
                <TextField label={owner ? t("ticket.write") : t("ticket.answer")} value={text} onInput={setText}
                  multiline rows={3} name="ticket_text" maxLength={10000} />
                <div class="row">
                  <Button type="submit" kind="primary" busy={busy}>{owner ? t("support.send") : t("ticket.do_answer")}</Button>
                  {staff && !owner && tk.assigned_to !== me?.user_id && <Button onClick={() => void take()} busy={busy}>{t("ticket.take")}</Button>}
                  {tk.status !== "closed" && <Button onClick={() => void close()} busy={busy}>{t("ticket.close")}</Button>}
                </div>
              </Form>
            )}
            <Alert notice={notice} />
          </Section>
        </>
      )}
    </>
  );
}

const screen: Screen = { path: "/support/tickets/:id", access: "any", title: "ticket.title", component: TicketScreen };
export default screen;
