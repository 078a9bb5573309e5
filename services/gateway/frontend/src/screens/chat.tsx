// Chat: task chats (an assignment's worker and the reviewing staff) and each pool's general
// chat. New messages arrive as live "chat" hints and the open thread loads again; managers
// and admins hide messages and mute authors.
import { useState } from "preact/hooks";
import { api, get, meStore, post } from "../api";
import { dateTime } from "../format";
import { t } from "../i18n";
import { href, type Screen } from "../router";
import { loadNames } from "../staff";
import { useStore } from "../store";
import type { ChatMessage, ChatMessages, ChatThreads, ThreadKind } from "../types";
import { Alert, Button, Form, LoadState, Section, Table, TextField, When, useAction, useLoad } from "../ui";

const isStaff = (role: string | undefined) => role === "manager" || role === "admin";

function Threads() {
  const me = useStore(meStore);
  const staff = isStaff(me?.role);
  const loaded = useLoad(async () => {
    const [threads, names] = await Promise.all([
      get<ChatThreads>("/chat"), staff ? loadNames() : Promise.resolve(null)]);
    return { threads, names };
  }, [staff], ["chat"]);
  const d = loaded.data;
  const pool = (id: string | null | undefined) => (d?.names ? d.names.pool(id) : id ?? "—");
  return (
    <>
      <p class="lead">{t("chat.explain")}</p>
      <LoadState loaded={loaded} />
      {d && (
        <>
          <Section title={t("chat.task_chats")}>
            {d.threads.threads.length === 0 ? <p class="muted">{t("chat.no_task_chats")}</p> : (
              <Table rows={d.threads.threads} rowKey={(th) => th.ref} columns={[
                { label: t("chat.last"), cell: (th) => <When at={th.last_at} /> },
                { label: t("common.pool"), cell: (th) => pool(th.pool_id) },
                { label: t("chat.messages"), cell: (th) => String(th.messages), class: "num" },
                { label: t("chat.thread"), cell: (th) => <a href={href(`/chat/assignment/${th.ref}`)}>{t("chat.open_thread")}</a> },
              ]} />
            )}
          </Section>
          <Section title={t("chat.pool_chats")}>
            {d.threads.pools.length === 0 ? <p class="muted">{t("common.empty")}</p> : (
              <ul class="links">
                {d.threads.pools.map((p) => <li key={p}><a href={href(`/chat/pool/${p}`)}>{pool(p)}</a></li>)}
              </ul>
            )}
          </Section>
        </>
      )}
    </>
  );
}

function Line({ m, me, staff, onChange }: { m: ChatMessage; me: string | undefined; staff: boolean; onChange: () => void }) {
  const [run, busy, notice] = useAction();
  const hide = () => run(async () => {
    await api("DELETE", `/chat/messages/${m.message_id}`);
    onChange();
  });
  const mute = () => run(async () => {
    await post("/chat/mutes", { user_id: m.author_id, minutes: 60, reason: "" });
    return t("chat.muted_done");
  });
  const who = m.author_id === me ? t("chat.me") : t(`role.${m.author_role}` as "role.worker");
  return (
    <li class={`message${m.author_id === me ? " mine" : ""}`}>
      <p class="message-head"><strong>{who}</strong>{" · "}<When at={m.created_at} /></p>
      {m.deleted ? <p class="muted">{t("chat.deleted")}</p> : <p class="pre">{m.text}</p>}
      {staff && !m.deleted && m.author_id !== me && (
        <div class="row">
          <Button kind="link" onClick={() => void hide()} busy={busy}>{t("chat.hide")}</Button>
          <Button kind="link" onClick={() => void mute()} busy={busy}>{t("chat.mute")}</Button>
        </div>
      )}
      <Alert notice={notice} />
    </li>
  );
}

function Thread({ params }: { params: Record<string, string> }) {
  const me = useStore(meStore);
  const kind = params.kind as ThreadKind;
  const path = `/chat/${encodeURIComponent(kind)}/${encodeURIComponent(params.ref)}`;
  const loaded = useLoad(() => get<ChatMessages>(path), [path], ["chat"]);
  const [text, setText] = useState("");
  const [run, busy, notice] = useAction();
  const send = () => run(async () => {
    if (!text.trim()) return;
    await post(`${path}/messages`, { text: text.trim() });
    setText("");
    await loaded.reload();
  });
  const d = loaded.data;
  return (
    <>
      <p><a href={href("/chat")}>← {t("chat.back")}</a></p>
      <Section title={kind === "pool" ? t("chat.pool_chat") : t("chat.task_chat")}>
        <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
        {d && d.items.length > 0 && (
          <ol class="thread" aria-label={t("chat.thread")} aria-live="polite">
            {d.items.map((m) => <Line key={m.message_id} m={m} me={me?.user_id} staff={isStaff(me?.role)} onChange={() => void loaded.reload()} />)}
          </ol>
        )}
        {/* a muted user reads the one notice with its end, and no form that would refuse */}
        {d?.muted_until && <p class="alert alert-info" role="status" data-testid="chat-muted">{t("error.chat_muted.until", { until: dateTime(d.muted_until) })}</p>}
        {d && !d.muted_until && (
          <Form onSubmit={() => void send()} label={t("chat.write_form")}>
            <TextField label={t("chat.write")} value={text} onInput={setText} multiline rows={2} name="chat_text" maxLength={2000} />
            <Button type="submit" kind="primary" busy={busy}>{t("chat.send")}</Button>
          </Form>
        )}
        <Alert notice={notice} />
      </Section>
    </>
  );
}

export const extra: Screen[] = [{ path: "/chat/:kind/:ref", access: "any", title: "chat.title", component: Thread }];

const screen: Screen = {
  path: "/chat", access: "any", title: "chat.title", component: Threads,
  nav: { group: "help", order: 4 },
};
export default screen;
