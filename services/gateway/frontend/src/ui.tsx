// Building blocks every screen uses.
import DOMPurify from "dompurify";
import { marked } from "marked";
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, meStore, post } from "./api";
import { errorText } from "./errors";
import { clock, dateTime, money } from "./format";
import { t, useLang } from "./i18n";
import { liveStore, type Topic } from "./live";
import { useStore } from "./store";

// ------------------------------------------------------------------ messages

export type Notice = { kind: "error" | "success" | "info"; text: string } | null;

export function Alert({ notice }: { notice: Notice }) {
  if (!notice) return null;
  const role = notice.kind === "error" ? "alert" : "status";
  const icon = notice.kind === "error" ? "⚠" : notice.kind === "success" ? "✓" : "ℹ";
  return (
    <p class={`alert alert-${notice.kind}`} role={role}>
      <span aria-hidden="true" class="alert-icon">{icon}</span> {notice.text}
    </p>
  );
}

export const fail = (e: unknown): Notice => ({ kind: "error", text: errorText(e) });
export const done = (text: string): Notice => ({ kind: "success", text });

// ------------------------------------------------------------------ data

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => Promise<void>;
}

/** ``fn``'s result, loaded now and again when ``deps`` change or a live ``topics`` hint comes. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[] = [], topics: Topic[] = []): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const live = useStore(liveStore);
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setLoading(true);
    try {
      const value = await fn();
      if (mine === seq.current) {
        setData(value);
        setError(null);
      }
    } catch (e) {
      if (mine === seq.current) setError(e);
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  }, deps);
  const liveKey = topics.map((tp) => live[tp] ?? 0).join(",");
  useEffect(() => {
    void reload();
  }, [reload, liveKey]);
  return { data, error, loading, reload };
}

/** Runs an action with a busy flag and its outcome as a notice. */
export function useAction(): [
  (fn: () => Promise<string | void>) => Promise<boolean>, boolean, Notice,
  (n: Notice) => void] {
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);
  const run = useCallback(async (fn: () => Promise<string | void>) => {
    setBusy(true);
    setNotice(null);
    try {
      const text = await fn();
      if (text) setNotice(done(text));
      return true;
    } catch (e) {
      setNotice(fail(e));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return [run, busy, notice, setNotice];
}

export function LoadState({ loaded, empty }: { loaded: Loaded<unknown>; empty?: boolean }) {
  if (loaded.error) return <Alert notice={fail(loaded.error)} />;
  if (loaded.loading && loaded.data === null) return <p class="muted">{t("common.loading")}</p>;
  if (empty) return <p class="muted">{t("common.empty")}</p>;
  return null;
}

// ------------------------------------------------------------------ values

export function Money({ minor, currency, signed }: { minor: number; currency: string; signed?: boolean }) {
  useLang();
  return <span class={`money${signed && minor < 0 ? " negative" : ""}`}>{money(minor, currency, { signed })}</span>;
}

export function When({ at }: { at: string | null | undefined }) {
  useLang();
  return at ? <time dateTime={at}>{dateTime(at)}</time> : <span>—</span>;
}

/** Seconds left until ``until``, ticking. */
export function useSecondsLeft(until: string | null | undefined): number | null {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!until) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [until]);
  if (!until) return null;
  return Math.max(0, (new Date(until).getTime() - now) / 1000);
}

export function Countdown({ until, label }: { until: string; label: string }) {
  const left = useSecondsLeft(until) ?? 0;
  const urgent = left < 60;
  return (
    <span class={`countdown${urgent ? " urgent" : ""}`} role="timer" aria-live="off">
      {label}: <strong>{left > 0 ? clock(left) : t("common.time_up")}</strong>
    </span>
  );
}

const BADGE_TONE: Record<string, string> = {
  ACTIVE: "info", SUBMITTED: "wait", ACCEPTED: "good", REJECTED: "bad", SKIPPED: "muted",
  EXPIRED: "muted", pending: "wait", approved: "good", rejected: "bad", accepted: "good",
  open: "good", draft: "muted", closed: "wait", archived: "muted", ok: "good",
  degraded: "bad", down: "bad",
};

export function Badge({ value, text }: { value: string; text: string }) {
  return <span class={`badge badge-${BADGE_TONE[value] ?? "muted"}`}>{text}</span>;
}

/** The mark of a sandbox project, pool or assignment: staff's tries, never paid or counted. */
export function SandboxMark() {
  return <span class="badge badge-sandbox" title={t("sandbox.explain")} data-testid="sandbox-mark">{t("sandbox.mark")}</span>;
}

// ------------------------------------------------------------------ Markdown

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Markdown rendered and sanitized (no scripts, no styles, no forms). */
export function Markdown({ text }: { text: string }) {
  const html = useMemo(() => DOMPurify.sanitize(marked.parse(text || "", { async: false }) as string, {
    FORBID_TAGS: ["style", "form", "input", "button", "iframe"],
    FORBID_ATTR: ["style"],
  }), [text]);
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}

/** A link to a URL given by a person: only http(s) becomes a link. */
export function SafeLink({ url, children }: { url: string; children?: ComponentChildren }) {
  if (!/^https?:\/\//i.test(url)) return <span class="break">{url}</span>;
  return <a class="break" href={url} target="_blank" rel="noopener noreferrer nofollow">{children ?? url}</a>;
}

// ------------------------------------------------------------------ forms

let fieldSeq = 0;

export function useId(prefix = "f"): string {
  const ref = useRef<string>("");
  if (!ref.current) ref.current = `${prefix}-${++fieldSeq}`;
  return ref.current;
}

/** A labelled control; ``children`` gets the id and the description ids to use. */
export function Field({ label, error, hint, children }: {
  label: string; error?: string; hint?: string;
  children: (a: { id: string; describedBy?: string; invalid: boolean }) => JSX.Element;
}) {
  const id = useId();
  const ids = [hint ? `${id}-hint` : "", error ? `${id}-err` : ""].filter(Boolean).join(" ");
  return (
    <div class={`field${error ? " has-error" : ""}`}>
      <label for={id}>{label}</label>
      {children({ id, describedBy: ids || undefined, invalid: !!error })}
      {hint && <small id={`${id}-hint`} class="hint">{hint}</small>}
      {error && <small id={`${id}-err`} class="field-error">{error}</small>}
    </div>
  );
}

export function TextField(props: {
  label: string; value: string; onInput: (v: string) => void; type?: "text" | "password" | "url" | "email"; error?: string;
  hint?: string; required?: boolean; autoComplete?: string; multiline?: boolean; rows?: number;
  inputMode?: "numeric" | "decimal" | "text"; maxLength?: number; name?: string; placeholder?: string;
}) {
  return (
    <Field label={props.label} error={props.error} hint={props.hint}>
      {({ id, describedBy, invalid }) => props.multiline ? (
        <textarea id={id} name={props.name} value={props.value} rows={props.rows ?? 4}
          aria-describedby={describedBy} aria-invalid={invalid} required={props.required}
          maxLength={props.maxLength} placeholder={props.placeholder}
          onInput={(e) => props.onInput((e.target as HTMLTextAreaElement).value)} />
      ) : (
        <input id={id} name={props.name} type={(props.type ?? "text") as "text"} value={props.value}
          aria-describedby={describedBy} aria-invalid={invalid} required={props.required}
          autoComplete={props.autoComplete} inputMode={props.inputMode} maxLength={props.maxLength}
          placeholder={props.placeholder}
          onInput={(e) => props.onInput((e.target as HTMLInputElement).value)} />
      )}
    </Field>
  );
}

export function SelectField<V extends string>(props: {
  label: string; value: V; onChange: (v: V) => void; options: [V, string][]; error?: string;
  hint?: string; name?: string;
}) {
  return (
    <Field label={props.label} error={props.error} hint={props.hint}>
      {({ id, describedBy, invalid }) => (
        <select id={id} name={props.name} value={props.value} aria-describedby={describedBy}
          aria-invalid={invalid} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value as V)}>
          {props.options.map(([v, label]) => <option value={v} key={v}>{label}</option>)}
        </select>
      )}
    </Field>
  );
}

export function CheckField({ label, checked, onChange }: {
  label: string; checked: boolean; onChange: (v: boolean) => void;
}) {
  const id = useId("c");
  return (
    <div class="field check">
      <input id={id} type="checkbox" checked={checked}
        onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />
      <label for={id}>{label}</label>
    </div>
  );
}

/** A form whose submit runs ``onSubmit`` (Enter works, the page does not reload). */
export function Form({ onSubmit, children, label }: {
  onSubmit: () => void; children: ComponentChildren; label?: string;
}) {
  return (
    <form class="form" aria-label={label} noValidate onSubmit={(e) => { e.preventDefault(); onSubmit(); }}>
      {children}
    </form>
  );
}

export function Button({ children, onClick, busy, kind = "secondary", type = "button", disabled, name }: {
  children: ComponentChildren; onClick?: () => void; busy?: boolean;
  kind?: "primary" | "secondary" | "danger" | "link"; type?: "button" | "submit";
  disabled?: boolean; name?: string;
}) {
  return (
    <button type={type} name={name} class={`btn btn-${kind}`} disabled={disabled || busy}
      aria-busy={busy || undefined} onClick={onClick}>
      {children}
    </button>
  );
}

// ------------------------------------------------------------------ layout

/** "Newer" / "Older" buttons under a paged list; shown only when there is another page. */
export function Pager({ onNewer, onOlder }: { onNewer: (() => void) | null; onOlder: (() => void) | null }) {
  if (!onNewer && !onOlder) return null;
  return (
    <div class="row pager">
      <Button disabled={!onNewer} onClick={() => onNewer?.()}>{t("common.newer")}</Button>
      <Button disabled={!onOlder} onClick={() => onOlder?.()}>{t("common.older")}</Button>
    </div>
  );
}

export function Section({ title, children, actions }: {
  title?: string; children: ComponentChildren; actions?: ComponentChildren;
}) {
  return (
    <section class="card">
      {(title || actions) && (
        <div class="card-head">
          {title && <h2>{title}</h2>}
          {actions && <div class="card-actions">{actions}</div>}
        </div>
      )}
      {children}
    </section>
  );
}

export interface Column<T> {
  label: string;
  cell: (row: T) => ComponentChildren;
  class?: string;
}

/** A table on wide screens, a list of labelled cards on narrow ones (CSS). */
export function Table<T>({ rows, columns, rowKey, caption }: {
  rows: T[]; columns: Column<T>[]; rowKey: (row: T) => string; caption?: string;
}) {
  return (
    <table class="table">
      {caption && <caption>{caption}</caption>}
      <thead>
        <tr>{columns.map((c) => <th scope="col" key={c.label} class={c.class}>{c.label}</th>)}</tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={rowKey(row)}>
            {columns.map((c) => <td key={c.label} data-label={c.label} class={c.class}>{c.cell(row)}</td>)}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Facts({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {items.map(([k, v]) => (
        <div key={k}><dt>{k}</dt><dd>{v}</dd></div>
      ))}
    </dl>
  );
}

// ------------------------------------------------------------------ MFA step-up

/** Runs ``action``; when the API asks for the second factor, asks for a code first. */
export function useStepUp(): {
  needCode: boolean; withMfa: (action: () => Promise<string | void>) => () => Promise<string | void>;
  form: JSX.Element | null;
} {
  const [pending, setPending] = useState<(() => Promise<string | void>) | null>(null);
  const [code, setCode] = useState("");
  const [run, busy, notice] = useAction();
  const [outcome, setOutcome] = useState<Notice>(null);
  const withMfa = (action: () => Promise<string | void>) => async () => {
    try {
      return await action();
    } catch (e) {
      if (e instanceof ApiError && e.code === "mfa_required") {
        setPending(() => action);     // the code form below says what to do
        return;
      }
      throw e;
    }
  };
  const confirm = () => run(async () => {
    const body = /^\d{6}$/.test(code.trim()) ? { code: code.trim() } : { recovery_code: code.trim() };
    await post("/auth/mfa/step-up", body);
    const me = meStore.get();
    if (me) meStore.set({ ...me, mfa_elevated: true });
    const action = pending;
    setPending(null);
    setCode("");
    if (action) {
      try {
        const text = await action();
        setOutcome(text ? done(text) : null);
      } catch (e) {
        setOutcome(fail(e));
      }
    }
  });
  const form = pending ? (
    <div class="stepup card-inner" role="group" aria-label={t("mfa.step_up")}>
      <p class="alert alert-info" role="status">{t("mfa.enter_code_to_continue")} {t("mfa.step_up_explain")}</p>
      <Form onSubmit={confirm} label={t("mfa.step_up")}>
        <TextField label={t("mfa.code")} value={code} onInput={setCode} inputMode="numeric"
          autoComplete="one-time-code" maxLength={32} name="mfa-code" />
        <div class="row">
          <Button type="submit" kind="primary" busy={busy}>{t("mfa.confirm")}</Button>
          <Button onClick={() => setPending(null)}>{t("common.cancel")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
    </div>
  ) : outcome ? <Alert notice={outcome} /> : null;
  return { needCode: !!pending, withMfa, form };
}
