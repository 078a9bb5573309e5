import { useState } from "preact/hooks";
import { get, post } from "../api";
import { fieldErrors } from "../errors";
import { t, type Key } from "../i18n";
import { go, href, type Screen } from "../router";
import type { FieldSpec, TakeResult } from "../types";
import {
  Alert, Button, CheckField, Countdown, Facts, Form, LoadState, Markdown, SafeLink, SandboxMark, Section,
  SelectField, TextField, useAction, useLoad,
} from "../ui";

type Values = Record<string, string | boolean>;

/** What a training answer gets back (null fields: not a training task). */
export interface Feedback { correct: boolean | null; known_answers: Record<string, unknown> | null; hint: string | null }

function FeedbackView({ f }: { f: Feedback }) {
  return (
    <div class={`alert ${f.correct ? "alert-success" : "alert-error"}`} role="status">
      <p><strong>{f.correct ? t("training.right") : t("training.wrong")}</strong></p>
      {f.known_answers && (
        <p>{t("training.known")}: {Object.entries(f.known_answers).map(([k, v]) => `${k} = ${String(v)}`).join(", ")}</p>
      )}
      {f.hint && <p>{t("training.hint")}: {f.hint}</p>}
    </div>
  );
}

/** A form value as the output spec's type wants it ("" = not given). */
function typed(f: FieldSpec, v: string | boolean | undefined): unknown {
  if (f.type === "boolean") return !!v;
  const s = typeof v === "string" ? v.trim() : "";
  if (s === "") return "";
  if (f.type === "integer" && /^-?\d+$/.test(s)) return Number(s);
  if (f.type === "number" && !Number.isNaN(Number(s.replace(",", ".")))) return Number(s.replace(",", "."));
  if (f.type === "json") {
    try { return JSON.parse(s); } catch { return s; }
  }
  return s;
}

function AnswerField({ f, value, onChange, error }: {
  f: FieldSpec; value: string | boolean | undefined; onChange: (v: string | boolean) => void; error?: string;
}) {
  const label = `${f.name}${f.required ? " *" : ""}`;
  const hints: string[] = [];
  if (f.min_length != null) hints.push(t("answer.hint.min_length", { n: f.min_length }));
  if (f.max_length != null) hints.push(t("answer.hint.max_length", { n: f.max_length }));
  if (f.min_value != null) hints.push(t("answer.hint.min_value", { value: f.min_value }));
  if (f.max_value != null) hints.push(t("answer.hint.max_value", { value: f.max_value }));
  const hint = hints.join("; ") || undefined;
  if (f.type === "boolean") {
    return <><CheckField label={label} checked={!!value} onChange={onChange} />{error && <small class="field-error">{error}</small>}</>;
  }
  if (f.allowed_values?.length) {
    const opts: [string, string][] = [["", t("answer.choose")], ...f.allowed_values.map((v) => [String(v), String(v)] as [string, string])];
    return <SelectField label={label} value={String(value ?? "")} onChange={onChange} options={opts} error={error} hint={hint} name={f.name} />;
  }
  const type = f.type === "url" || f.type === "file" ? "url" : f.type === "integer" || f.type === "number" ? "text" : "text";
  const multiline = f.type === "json" || (f.type === "string" && (f.max_length ?? 0) > 200);
  return (
    <TextField label={label} value={String(value ?? "")} onInput={onChange} type={type} name={f.name}
      inputMode={f.type === "integer" ? "numeric" : f.type === "number" ? "decimal" : undefined}
      multiline={multiline} error={error} hint={hint ?? (f.type === "json" ? t("answer.hint.json") : undefined)} />
  );
}

const REPORT_REASONS = ["broken_link", "unclear_instructions", "offensive_content", "other"] as const;

function Report({ a, onDone }: { a: TakeResult; onDone: () => void }) {
  const [reason, setReason] = useState<string>("unclear_instructions");
  const [text, setText] = useState("");
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    await post(`/worker/assignments/${a.assignment_id}/report`, { reason, text });
    onDone();
    return t("task.reported");
  });
  return (
    <div class="card-inner">
      <h3>{t("task.report")}</h3>
      <Form onSubmit={() => void submit()} label={t("task.report")}>
        <SelectField label={t("task.report_reason")} value={reason} onChange={setReason}
          options={REPORT_REASONS.map((r) => [r, t(`report.${r}` as Key)])} />
        <TextField label={t("task.report_text")} value={text} onInput={setText} multiline rows={3} maxLength={10000} />
        <Button type="submit" busy={busy}>{t("task.report_send")}</Button>
      </Form>
      <Alert notice={notice} />
    </div>
  );
}

/** The task as a worker works on it. ``base`` is where its answers go: "/worker", or
 * "/sandbox" for staff trying a sandbox pool (no report, chat or training feedback there). */
export function Work({ a, onGone, base = "/worker" }: {
  a: TakeResult; onGone: (f: Feedback | null) => void; base?: "/worker" | "/sandbox";
}) {
  const sandbox = base === "/sandbox";
  const [values, setValues] = useState<Values>({});
  const [proofUrl, setProofUrl] = useState("");
  const [proofText, setProofText] = useState("");
  const [comment, setComment] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [reporting, setReporting] = useState(false);
  const [run, busy, notice, setNotice] = useAction();

  const submit = () => run(async () => {
    const answers: Record<string, unknown> = {};
    for (const f of a.output_spec) {
      const v = typed(f, values[f.name]);
      if (v !== "") answers[f.name] = v;
    }
    setErrors({});
    try {
      await post(`${base}/assignments/${a.assignment_id}/submit`, {
        answers, comment: comment.trim() || null, proof_url: proofUrl.trim() || null,
        proof_text: proofText.trim() || null,
      });
    } catch (e) {
      const fe = fieldErrors(e);
      setErrors(Object.fromEntries(Object.entries(fe).map(([k, v]) => [k.replace(/^answers\./, ""), v])));
      throw e;
    }
    setNotice({ kind: "success", text: t("task.submitted") });
    const fb = sandbox ? null
      : await get<Feedback>(`/worker/assignments/${a.assignment_id}/feedback`).catch(() => null);
    onGone(fb && fb.correct !== null ? fb : null);
  });
  const skip = () => run(async () => {
    if (!confirm(t("task.skip_confirm"))) return;
    await post(`${base}/assignments/${a.assignment_id}/skip`);
    onGone(null);
    return t("task.skipped");
  });

  return (
    <>
      <Section title={a.pool_name} actions={sandbox ? <SandboxMark /> : undefined}>
        {sandbox && <p class="alert alert-info" role="status">{t("sandbox.trying")}</p>}
        <p><Countdown until={a.deadline_at} label={t("task.deadline")} /></p>
        <h3>{t("task.instructions")}</h3>
        <Markdown text={a.instructions} />
        <h3>{t("task.input")}</h3>
        <Facts items={Object.entries(a.input).map(([k, v]) => [k,
          typeof v === "string" && /^https?:\/\//i.test(v) ? <SafeLink url={v} /> : typeof v === "string" ? v : String(JSON.stringify(v))])} />
      </Section>
      <Section title={t("task.answer")}>
        <Form onSubmit={() => void submit()} label={t("task.answer")}>
          {a.output_spec.map((f) => (
            <AnswerField key={f.name} f={f} value={values[f.name]} error={errors[f.name]}
              onChange={(v) => setValues({ ...values, [f.name]: v })} />
          ))}
          <TextField label={t("task.proof_url")} value={proofUrl} onInput={setProofUrl} type="url" name="proof_url"
            hint={t("task.proof_url_hint")} error={errors.proof_url} maxLength={2000} />
          <TextField label={t("task.proof_text")} value={proofText} onInput={setProofText} multiline rows={2}
            name="proof_text" error={errors.proof_text} maxLength={10000} />
          <TextField label={t("task.comment")} value={comment} onInput={setComment} multiline rows={3}
            name="comment" error={errors.comment} maxLength={10000} />
          {errors._ && <p class="field-error">{errors._}</p>}
          <div class="row">
            <Button type="submit" kind="primary" busy={busy}>{t("task.submit")}</Button>
            <Button onClick={() => void skip()} busy={busy}>{t("task.skip")}</Button>
            {!sandbox && <Button kind="link" onClick={() => setReporting(!reporting)}>{t("task.report")}</Button>}
            {!sandbox && <a class="btn btn-link" href={href(`/chat/assignment/${a.assignment_id}`)}>{t("chat.ask_reviewer")}</a>}
          </div>
        </Form>
        <Alert notice={notice} />
        {reporting && <Report a={a} onDone={() => setReporting(false)} />}
      </Section>
    </>
  );
}

function Task({ params }: { params: Record<string, string> }) {
  const loaded = useLoad(() => get<{ items: TakeResult[] }>("/worker/active"), [], ["assignments"]);
  const [finished, setFinished] = useState(false);
  const [feedback, setFeedback] = useState<Feedback | null>(null);
  const items = loaded.data?.items ?? [];
  const current = items.find((a) => a.assignment_id === params.id) ?? (params.id ? undefined : items[0]);
  if (finished) {
    return (
      <Section>
        <p class="alert alert-success" role="status">{t("task.done")}</p>
        {feedback && <FeedbackView f={feedback} />}
        <div class="row">
          <Button kind="primary" onClick={() => go("/pools")}>{t("task.next")}</Button>
          <a class="btn btn-secondary" href={href("/my-tasks")}>{t("nav.my_tasks")}</a>
        </div>
      </Section>
    );
  }
  return (
    <>
      <LoadState loaded={loaded} />
      {loaded.data && !current && (
        <Section>
          <p>{params.id ? t("task.not_active") : t("task.none")}</p>
          <a class="btn btn-primary" href={href("/pools")}>{t("task.to_pools")}</a>
        </Section>
      )}
      {items.length > 1 && (
        <nav class="tabs" aria-label={t("task.active_list")}>
          {items.map((a) => (
            <a key={a.assignment_id} href={href(`/task/${a.assignment_id}`)}
              aria-current={a === current ? "page" : undefined}>{a.pool_name}</a>
          ))}
        </nav>
      )}
      {current && <Work a={current} key={current.assignment_id} onGone={(f) => { setFeedback(f); setFinished(true); }} />}
    </>
  );
}

export const extra: Screen[] = [{ path: "/task/:id", access: ["worker"], title: "task.title", component: Task }];

const screen: Screen = {
  path: "/task", access: ["worker"], title: "task.title", component: Task,
  nav: { group: "work", order: 2 },
};
export default screen;
