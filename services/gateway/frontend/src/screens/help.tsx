import { useState } from "preact/hooks";
import { get, meStore, post, type Role } from "../api";
import { t, useLang, type Key } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import { Alert, Button, Form, Markdown, Section, TextField, useAction } from "../ui";

const STEPS: Record<Role, Key[]> = {
  worker: ["help.worker.1", "help.worker.2", "help.worker.3", "help.worker.4", "help.worker.5", "help.worker.6"],
  manager: ["help.manager.1", "help.manager.2", "help.manager.3", "help.manager.4"],
  admin: ["help.admin.1", "help.admin.2", "help.admin.3", "help.admin.4", "help.admin.5"],
};

interface Citation { article_id: string; title: string; lang: string }
interface Answer {
  answered: boolean; answer?: string | null; citation?: Citation | null; generated?: string | null;
  ticket_id?: string | null; confidence: number; diagnose: boolean;
}
interface Blocker { kind: string; message: string; pool_name?: string | null }
export interface Diagnosis { can_take: boolean; trust_level: string; blocker: Blocker | null; per_pool: Blocker[] }

export function LegalMinimum() {
  return (
    <Section title={t("legal.minimum")}>
      <p>{t("legal.minimum.1")}</p>
      <p>{t("legal.minimum.2")}</p>
    </Section>
  );
}

export function DiagnosisView({ d }: { d: Diagnosis }) {
  if (d.can_take) return <p class="alert alert-success" role="status" data-testid="diagnosis">{t("assistant.can_take")}</p>;
  const others = d.per_pool.length > 1 ? d.per_pool : [];
  return (
    <div class="alert alert-info" role="status" data-testid="diagnosis">
      <p><strong>{t("assistant.blocked_by")}</strong> {d.blocker?.message ?? t("assistant.blocked_everywhere")}</p>
      {others.length > 0 && <ul>{others.map((b, i) => <li key={i}>{b.message}</li>)}</ul>}
    </div>
  );
}

function Assistant({ role }: { role: Role }) {
  const lng = useLang();
  const [question, setQuestion] = useState("");
  const [reply, setReply] = useState<{ answer: Answer; diagnosis: Diagnosis | null } | null>(null);
  const [diag, setDiag] = useState<Diagnosis | null>(null);
  const [run, busy, notice] = useAction();
  const ask = () => run(async () => {
    if (question.trim().length < 2) return;
    setDiag(null);
    setReply(await post("/assistant/ask", { question: question.trim(), lang: lng, hand_over: true }));
  });
  const why = () => run(async () => {
    setReply(null);
    setDiag(await get<Diagnosis>(`/assistant/diagnose?lang=${lng}`));
  });
  const a = reply?.answer;
  return (
    <Section title={t("assistant.title")}>
      <p>{t("assistant.explain")}</p>
      <Form onSubmit={() => void ask()} label={t("assistant.title")}>
        <TextField label={t("support.question")} value={question} onInput={setQuestion} name="assistant-question" maxLength={2000} />
        <div class="row">
          <Button type="submit" kind="primary" busy={busy}>{t("support.ask_submit")}</Button>
          {role === "worker" && <Button busy={busy} onClick={() => void why()}>{t("assistant.why_cant_take")}</Button>}
        </div>
      </Form>
      <Alert notice={notice} />
      {a && (a.answered && a.citation ? (
        <div class="answer" data-testid="assistant-answer">
          <p class="muted">{t("assistant.source", { id: a.citation.article_id, title: a.citation.title })}</p>
          {a.generated && <p>{a.generated}</p>}
          <Markdown text={a.answer ?? ""} />
          {reply?.diagnosis && <DiagnosisView d={reply.diagnosis} />}
        </div>
      ) : (
        <p class="alert alert-info" role="status" data-testid="assistant-answer">
          {a.ticket_id ? t("assistant.handed_over", { id: a.ticket_id.slice(0, 8) }) : t("support.no_answer")}
        </p>
      ))}
      {diag && <DiagnosisView d={diag} />}
    </Section>
  );
}

function Help() {
  const me = useStore(meStore);
  // each reads their own part first; only staff see the parts of the roles below theirs
  // (the owner's part speaks of the share, which nobody else sees)
  const below: Record<Role, Role[]> = { worker: [], manager: ["worker"], admin: ["manager", "worker"] };
  const roles: Role[] = me ? [me.role, ...below[me.role]] : ["worker"];
  return (
    <>
      <p class="lead">{t("help.model")}</p>
      {me && <Assistant role={me.role} />}
      {roles.map((r) => (
        <Section key={r} title={t(`help.title.${r}` as Key)}>
          <ol class="steps">
            {STEPS[r].map((k) => <li key={k}>{t(k)}</li>)}
          </ol>
        </Section>
      ))}
      <LegalMinimum />
      {!me && <p><a href="#/contact">{t("leads.invite")}</a></p>}
    </>
  );
}

const screen: Screen = {
  path: "/help", access: "public", title: "help.title", component: Help,
  nav: { group: "help", order: 1 },
};
export default screen;
