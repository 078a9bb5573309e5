import { useState } from "preact/hooks";
import { ApiError, api, get, meStore, post } from "../api";
import { errorText, fieldErrors, fieldText } from "../errors";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames, type Names } from "../staff";
import { useStore } from "../store";
import type { Page, Project } from "../types";
import {
  Alert, Badge, Button, CheckField, Facts, Form, LoadState, Section, SelectField, Table, TextField, When, useAction,
  useLoad, type Notice,
} from "../ui";

// What each collector counts (the fields a condition may test), as the rules service defines.
const FIELDS: Record<string, string[]> = {
  income: ["income_sum_for_24h"],
  captcha: ["stored_results_count", "success_rate", "fail_rate"],
  golden_set: ["total_answers_count", "correct_answers_rate", "incorrect_answers_rate", "golden_set_answers_count",
    "golden_set_correct_answers_rate", "golden_set_incorrect_answers_rate"],
  majority_vote: ["total_answers_count", "correct_answers_rate", "incorrect_answers_rate"],
  fast_answers: ["total_submitted_count", "fast_submitted_count"],
  submitted_answers: ["submitted_count_24h"],
  skipped_in_row: ["skipped_in_row_count"],
  acceptance_rate: ["total_reviewed_count", "accepted_rate", "rejected_rate"],
  assessments: ["pending_submitted_count", "accepted_submitted_count", "rejected_submitted_count", "assessment_event"],
  access_revoked: ["access_revoked_reason"],
};
const OPERATORS = ["==", "!=", ">", ">=", "<", "<="];
const ACTIONS = ["restriction", "set_skill", "set_skill_from_field", "accept_all", "reject_all", "change_overlap", "bonus"];
// which action parameters each action type needs
const ACTION_PARAMS: Record<string, string[]> = {
  restriction: ["scope", "duration_unit", "duration", "private_comment"],
  set_skill: ["skill", "value"], set_skill_from_field: ["skill", "from_field"], accept_all: [],
  reject_all: ["public_comment"], change_overlap: ["add"], bonus: ["amount_minor", "currency"],
};
const NUMERIC = new Set(["duration", "value", "add", "amount_minor"]);

interface Cond { field: string; operator: string; value: string }
interface Draft {
  name: string; scope: string; pool_id: string; project_id: string; kind: string; history_size: string;
  answer_threshold: string; fast_submit_threshold_seconds: string; conditions: Cond[]; action: Record<string, string>;
}
const EMPTY: Draft = { name: "", scope: "pool", pool_id: "", project_id: "", kind: "", history_size: "", answer_threshold: "",
  fast_submit_threshold_seconds: "", conditions: [{ field: "", operator: "", value: "" }], action: { type: "" } };

/** A rule as the API gives it. */
interface Rule {
  rule_id: string; name: string; scope: string; pool_id: string | null; project_id: string | null;
  collector: Record<string, string | number>; conditions: { field: string; operator: string; value: string | number }[];
  action: Record<string, string | number>; enabled: boolean; deleted: boolean; version: number;
  evidence_public: boolean; created_at: string; updated_at: string;
}
interface RuleVersion {
  version: number; name: string; conditions: Rule["conditions"]; action: Rule["action"]; evidence_public: boolean;
  edited_by: string; edited_by_login: string | null; edited_at: string;
}

const opt = (v: string) => (v.trim() === "" ? null : v.trim());
// a number, or the text as typed: the API then says "must be a number" for that very field
const num = (v: string) => (v.trim() === "" ? null : Number.isFinite(Number(v)) ? Number(v) : v.trim());
const str = (v: unknown) => (v === null || v === undefined ? "" : String(v));

function toDraft(d: Draft) {
  const action: Record<string, unknown> = { type: opt(d.action.type ?? "") };
  for (const p of ACTION_PARAMS[d.action.type] ?? []) {
    const v = d.action[p] ?? "";
    action[p] = NUMERIC.has(p) ? num(v) : opt(v);
  }
  return {
    name: opt(d.name), scope: opt(d.scope), pool_id: d.scope === "pool" ? opt(d.pool_id) : null,
    project_id: d.scope === "project" ? opt(d.project_id) : null,
    collector: { kind: opt(d.kind), history_size: num(d.history_size),
      ...(d.kind === "majority_vote" ? { answer_threshold: num(d.answer_threshold) } : {}),
      ...(d.kind === "fast_answers" ? { fast_submit_threshold_seconds: num(d.fast_submit_threshold_seconds) } : {}) },
    conditions: d.conditions.map((c) => ({ field: opt(c.field), operator: opt(c.operator),
      value: c.value.trim() === "" ? null : Number.isNaN(Number(c.value)) ? c.value.trim() : Number(c.value) })),
    action,
  };
}

/** The editor's draft of a stored rule (what an edit starts from). */
function fromRule(r: Rule): Draft {
  return {
    name: r.name, scope: r.scope, pool_id: r.pool_id ?? "", project_id: r.project_id ?? "",
    kind: str(r.collector.kind), history_size: str(r.collector.history_size),
    answer_threshold: str(r.collector.answer_threshold),
    fast_submit_threshold_seconds: str(r.collector.fast_submit_threshold_seconds),
    conditions: r.conditions.map((c) => ({ field: c.field, operator: c.operator, value: str(c.value) })),
    action: Object.fromEntries(Object.entries(r.action).map(([k, v]) => [k, str(v)])),
  };
}

/** A path of the API ("conditions[0].value", "rule.collector.kind", "conditions.0.value")
 * as the editor's own field key ("cond.0.value", "kind", "action.type"). */
function editorKey(path: string): string {
  return path.replace(/^rule\./, "").replace(/^conditions(?:\[(\d+)\]|\.(\d+))/, (_, a, b) => `cond.${a ?? b}`)
    .replace(/^collector\./, "");
}

// the rules service's checks beyond "missing" (English), each as a field and a message
const PROBLEMS: [RegExp, (m: RegExpExecArray) => [string, string]][] = [
  [/^collector\.(\w+) does not apply to/, (m) => [m[1], t("rules.problem.not_applicable")]],
  [/^conditions\[(\d+)\]\.field .* is not a field of/, (m) => [`cond.${m[1]}.field`, t("rules.problem.not_a_field")]],
  [/^conditions\[(\d+)\]: .* compares only with == or !=/, (m) => [`cond.${m[1]}.operator`, t("rules.problem.equality_only")]],
  [/^conditions\[(\d+)\]\.value (must be .*)$/, (m) => [`cond.${m[1]}.value`, fieldText(m[2])]],
  [/^action\.from_field .* is not a rate field/, () => ["action.from_field", t("rules.problem.not_a_rate")]],
];

/** Per-field messages of a refused rule, in the viewer's language. */
function ruleErrors(e: unknown): Record<string, string> {
  if (!(e instanceof ApiError) || !Array.isArray(e.details)) return {};
  if (e.code === "rule_incomplete") {
    return Object.fromEntries((e.details as string[]).map((p) => [editorKey(p), t("rules.required")]));
  }
  if (e.code === "rule_invalid") {
    const out: Record<string, string> = {};
    for (const text of e.details as string[]) {
      for (const [re, pick] of PROBLEMS) {
        const m = re.exec(text);
        if (m) {
          const [key, message] = pick(m);
          out[key] = message;
          break;
        }
      }
    }
    return out;
  }
  return Object.fromEntries(Object.entries(fieldErrors(e)).map(([k, v]) => [editorKey(k), v]));
}

/** "% правильных ответов >= 80; ответов > 10" */
function conditionsText(conditions: Rule["conditions"]): string {
  return conditions.map((c) => `${t(`rules.field.${c.field}` as Key)} ${c.operator} ${c.value}`).join("; ");
}

function actionText(action: Rule["action"]): string {
  const type = String(action.type);
  const params = (ACTION_PARAMS[type] ?? []).filter((p) => action[p] !== undefined && action[p] !== null).map((p) => {
    const v = String(action[p]);
    const shown = p === "scope" || p === "duration_unit" ? t(`rules.${p}.${v}` as Key) : v;
    return `${t(`rules.param.${p}` as Key)}: ${shown}`;
  });
  return [t(`rules.action.${type}` as Key), ...params].join(" · ");
}

/** The "if" and "then" parts: what a new rule and an edit both set. */
function Logic({ d, set, err, fields }: {
  d: Draft; set: (patch: Partial<Draft>) => void; err: (key: string) => string | undefined; fields: string[];
}) {
  const setCond = (i: number, patch: Partial<Cond>) => set({ conditions: d.conditions.map((c, j) => (j === i ? { ...c, ...patch } : c)) });
  return (
    <>
      <fieldset>
        <legend>{t("rules.if")}</legend>
        {d.conditions.map((c, i) => (
          <div class="row" key={i}>
            <SelectField label={t("rules.field")} value={c.field} onChange={(v) => setCond(i, { field: v })} error={err(`cond.${i}.field`)}
              options={[["", t("common.choose")], ...fields.map((f) => [f, t(`rules.field.${f}` as Key)] as [string, string])]} />
            <SelectField label={t("rules.operator")} value={c.operator} onChange={(v) => setCond(i, { operator: v })}
              error={err(`cond.${i}.operator`)} options={[["", "—"], ...OPERATORS.map((o) => [o, o] as [string, string])]} />
            <TextField label={t("rules.value")} value={c.value} onInput={(v) => setCond(i, { value: v })} error={err(`cond.${i}.value`)} />
            {d.conditions.length > 1 && <Button kind="link" onClick={() => set({ conditions: d.conditions.filter((_, j) => j !== i) })}>{t("common.remove")}</Button>}
          </div>
        ))}
        <Button onClick={() => set({ conditions: [...d.conditions, { field: "", operator: "", value: "" }] })}>{t("rules.add_condition")}</Button>
      </fieldset>
      <fieldset>
        <legend>{t("rules.then")}</legend>
        <div class="row">
          <SelectField label={t("rules.action")} value={d.action.type ?? ""} onChange={(v) => set({ action: { type: v } })} error={err("action.type")}
            options={[["", t("common.choose")], ...ACTIONS.map((a) => [a, t(`rules.action.${a}` as Key)] as [string, string])]} />
          {(ACTION_PARAMS[d.action.type] ?? []).map((p) => p === "scope" || p === "duration_unit" ? (
            <SelectField key={p} label={t(`rules.param.${p}` as Key)} value={d.action[p] ?? ""} error={err(`action.${p}`)}
              onChange={(v) => set({ action: { ...d.action, [p]: v } })}
              options={[["", t("common.choose")], ...(p === "scope" ? ["pool", "project", "all"] : ["minutes", "hours", "days", "permanent"])
                .map((v) => [v, t(`rules.${p}.${v}` as Key)] as [string, string])]} />
          ) : (
            <TextField key={p} label={t(`rules.param.${p}` as Key)} value={d.action[p] ?? ""} error={err(`action.${p}`)}
              onInput={(v) => set({ action: { ...d.action, [p]: v } })} inputMode={NUMERIC.has(p) ? "numeric" : undefined} />
          ))}
        </div>
      </fieldset>
    </>
  );
}

interface Hits { events_scanned: number; workers: string[]; truncated: boolean }

function BacktestResult({ hits, names }: { hits: Hits | null; names: Names | null }) {
  if (!hits) return null;
  return (
    <p class="alert alert-info" role="status" data-testid="backtest-result">
      {t("rules.backtest_result", { n: hits.workers.length, events: hits.events_scanned })}
      {hits.workers.length > 0 && <> {hits.workers.map((w) => names?.user(w) ?? w).join(", ")}</>}
    </p>
  );
}

/** Saving or backtesting a draft: the busy flag, the outcome and the refused fields. */
function useDraftCalls() {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [notice, setNotice] = useState<Notice>(null);
  const [busy, setBusy] = useState(false);
  const [hits, setHits] = useState<Hits | null>(null);
  const call = async (fn: () => Promise<Hits | string>) => {
    setBusy(true); setNotice(null); setHits(null);
    try {
      const r = await fn();
      setErrors({});
      if (typeof r === "string") setNotice({ kind: "success", text: r });
      else setHits(r);
    } catch (e) {
      setErrors(ruleErrors(e));
      setNotice({ kind: "error", text: errorText(e) });
    } finally {
      setBusy(false);
    }
  };
  return { errors, notice, busy, hits, call };
}

function Editor({ onSaved, admin }: { onSaved: () => void; admin: boolean }) {
  const names = useLoad(loadNames);
  const [d, setD] = useState<Draft>(EMPTY);
  const projects = useLoad(() => (d.scope === "project" ? get<Page<Project>>("/projects?limit=500") : Promise.resolve(null)),
    [d.scope === "project"]);
  const { errors, notice, busy, hits, call } = useDraftCalls();
  const err = (key: string) => errors[key];
  const set = (patch: Partial<Draft>) => setD({ ...d, ...patch });
  const save = () => call(async () => {
    await post("/admin/rules", toDraft(d));
    setD(EMPTY);
    onSaved();
    return t("rules.saved");
  });
  const backtest = () => call(() => post<Hits>("/rules/backtest", { rule: toDraft(d) }));
  const pools = names.data?.pools ?? [];
  return (
    <Section title={t("rules.new")}>
      <p>{t("rules.editor_explain")}</p>
      <Form onSubmit={() => void save()} label={t("rules.new")}>
        <TextField label={t("rules.name")} value={d.name} onInput={(v) => set({ name: v })} error={err("name")} name="rule_name" />
        <div class="row">
          <SelectField label={t("rules.scope")} value={d.scope} onChange={(v) => set({ scope: v })} error={err("scope")}
            options={[["pool", t("rules.scope.pool")], ["project", t("rules.scope.project")], ["platform", t("rules.scope.platform")]]} />
          {d.scope === "pool" && (
            <SelectField label={t("common.pool")} value={d.pool_id} onChange={(v) => set({ pool_id: v })} error={err("pool_id")}
              options={[["", t("common.choose")], ...pools.map((p) => [p.pool_id, p.name] as [string, string])]} />
          )}
          {d.scope === "project" && (
            <SelectField label={t("rules.project")} value={d.project_id} onChange={(v) => set({ project_id: v })} error={err("project_id")}
              options={[["", t("common.choose")], ...(projects.data?.items ?? []).map((p) => [p.project_id, p.name] as [string, string])]} />
          )}
        </div>
        <fieldset>
          <legend>{t("rules.collector")}</legend>
          <div class="row">
            <SelectField label={t("rules.kind")} value={d.kind} onChange={(v) => set({ kind: v, conditions: [{ field: "", operator: "", value: "" }] })}
              error={err("kind")} options={[["", t("common.choose")], ...Object.keys(FIELDS).map((k) => [k, t(`rules.kind.${k}` as Key)] as [string, string])]} />
            <TextField label={t("rules.history_size")} value={d.history_size} onInput={(v) => set({ history_size: v })}
              inputMode="numeric" hint={t("rules.history_hint")} error={err("history_size")} />
            {d.kind === "majority_vote" && <TextField label={t("rules.answer_threshold")} value={d.answer_threshold}
              onInput={(v) => set({ answer_threshold: v })} inputMode="numeric" error={err("answer_threshold")} />}
            {d.kind === "fast_answers" && <TextField label={t("rules.fast_threshold")} value={d.fast_submit_threshold_seconds}
              onInput={(v) => set({ fast_submit_threshold_seconds: v })} inputMode="numeric" error={err("fast_submit_threshold_seconds")} />}
          </div>
        </fieldset>
        <Logic d={d} set={set} err={err} fields={FIELDS[d.kind] ?? []} />
        <div class="row">
          {admin && <Button type="submit" kind="primary" busy={busy}>{t("rules.save")}</Button>}
          <Button onClick={() => void backtest()} busy={busy}>{t("rules.backtest")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
      <BacktestResult hits={hits} names={names.data} />
    </Section>
  );
}

/** Edit a rule in place: a new version of its name, conditions and action (the counter and
 * where it acts stay: counts so far mean something only for them), and whether it is on. */
function EditRule({ rule, names, onSaved, onClose }: {
  rule: Rule; names: Names | null; onSaved: () => void; onClose: () => void;
}) {
  const [current, setCurrent] = useState<Rule>(rule);
  const [d, setD] = useState<Draft>(() => fromRule(rule));
  const [enabled, setEnabled] = useState(rule.enabled);
  const [evidence, setEvidence] = useState(rule.evidence_public);
  const { errors, notice, busy, hits, call } = useDraftCalls();
  const set = (patch: Partial<Draft>) => setD({ ...d, ...patch });
  const draft = () => ({ ...toDraft(d), name: opt(d.name) ?? current.name });
  const save = () => call(async () => {
    let saved = await api<Rule>("PUT", `/admin/rules/${current.rule_id}`, { body: { rule: draft(), evidence_public: evidence } });
    if (enabled !== saved.enabled) {
      saved = await api<Rule>("PATCH", `/admin/rules/${current.rule_id}`, { body: { enabled } });
    }
    const from = current.version;
    setCurrent(saved);
    onSaved();
    return t("rules.edited", { from, version: saved.version });
  });
  const backtest = () => call(() => post<Hits>("/rules/backtest", { rule: draft() }));
  const project = useLoad(() => (current.project_id ? get<Project>(`/projects/${current.project_id}`) : Promise.resolve(null)),
    [current.project_id]);
  const c = current.collector;
  const where = current.scope === "pool" ? names?.pool(current.pool_id) ?? "…"
    : current.scope === "project" ? project.data?.name ?? current.project_id ?? "—" : t("rules.scope.platform");
  const title = t("rules.edit_title", { name: current.name });
  const facts: [string, string][] = [
    [t("rules.scope"), where],
    [t("rules.kind"), t(`rules.kind.${c.kind}` as Key)],
    [t("rules.history_size"), c.history_size !== undefined ? String(c.history_size) : t("rules.history_all")],
  ];
  if (c.answer_threshold !== undefined) facts.push([t("rules.answer_threshold"), String(c.answer_threshold)]);
  if (c.fast_submit_threshold_seconds !== undefined) facts.push([t("rules.fast_threshold"), String(c.fast_submit_threshold_seconds)]);
  return (
    <Section title={title} actions={<Badge value="open" text={t("rules.version_n", { version: current.version })} />}>
      <p>{t("rules.edit_explain")}</p>
      <Facts items={facts} />
      <Form onSubmit={() => void save()} label={title}>
        <TextField label={t("rules.name")} value={d.name} onInput={(v) => set({ name: v })} error={errors.name} name="edit_rule_name" />
        <Logic d={d} set={set} err={(k) => errors[k]} fields={FIELDS[String(c.kind)] ?? []} />
        <div class="row">
          <CheckField label={t("rules.enabled_check")} checked={enabled} onChange={setEnabled} />
          <CheckField label={t("rules.evidence_public")} checked={evidence} onChange={setEvidence} />
        </div>
        <div class="row">
          <Button type="submit" kind="primary" busy={busy}>{t("rules.save_version")}</Button>
          <Button onClick={() => void backtest()} busy={busy}>{t("rules.backtest")}</Button>
          <Button kind="link" onClick={onClose}>{t("common.close")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
      <BacktestResult hits={hits} names={names} />
    </Section>
  );
}

/** Every version of a rule, newest first: what it tested and did, who changed it, when. */
function Versions({ rule, names, onClose }: { rule: Rule; names: Names | null; onClose: () => void }) {
  const loaded = useLoad(() => get<{ items: RuleVersion[] }>(`/rule-versions/${rule.rule_id}`), [rule.rule_id, rule.version]);
  const items = loaded.data?.items ?? [];
  // a part that differs from the version before it is marked as the change it was
  const changed = (v: RuleVersion, part: (x: RuleVersion) => string) => {
    const before = items.find((x) => x.version === v.version - 1);
    const text = part(v);
    return before && part(before) !== text ? <ins class="diff-new">{text}</ins> : text;
  };
  return (
    <Section title={t("rules.versions_title", { name: rule.name })} actions={<Button kind="link" onClick={onClose}>{t("common.close")}</Button>}>
      <LoadState loaded={loaded} empty={!!loaded.data && items.length === 0} />
      {items.length > 0 && (
        <Table rows={items} rowKey={(v) => String(v.version)} columns={[
          { label: t("rules.version"), cell: (v) => v.version === rule.version
            ? <span>{v.version} <Badge value="open" text={t("rules.current")} /></span> : v.version },
          { label: t("rules.name"), cell: (v) => changed(v, (x) => x.name) },
          { label: t("rules.if"), cell: (v) => changed(v, (x) => conditionsText(x.conditions)) },
          { label: t("rules.then"), cell: (v) => changed(v, (x) => actionText(x.action)) },
          { label: t("rules.evidence"), cell: (v) => changed(v, (x) => (x.evidence_public ? t("common.yes") : t("common.no"))) },
          { label: t("rules.edited_by"), cell: (v) => <span>{v.edited_by_login ?? names?.user(v.edited_by) ?? "…"}<br /><When at={v.edited_at} /></span> },
        ]} />
      )}
    </Section>
  );
}

function Explain() {
  const [worker, setWorker] = useState("");
  const [result, setResult] = useState<{ firings: { firing_id: string; rule_id: string; rule_version?: number | null; fired_at: string; outcome: string; facts: Record<string, unknown> }[]; total: number } | null>(null);
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => { setResult(await get(`/rules/explain/${encodeURIComponent(worker.trim())}?limit=50`)); });
  return (
    <Section title={t("rules.explain")}>
      <p>{t("rules.explain_explain")}</p>
      <Form onSubmit={() => void submit()} label={t("rules.explain")}>
        <div class="row">
          <TextField label={t("rules.worker_id")} value={worker} onInput={setWorker} name="explain_worker" />
          <Button type="submit" busy={busy}>{t("rules.explain_run")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
      {result && (result.firings.length === 0 ? <p class="muted">{t("rules.no_firings")}</p> : (
        <Table rows={result.firings} rowKey={(f) => f.firing_id} columns={[
          { label: t("common.when"), cell: (f) => <When at={f.fired_at} /> },
          { label: t("rules.outcome"), cell: (f) => f.outcome },
          { label: t("rules.version"), cell: (f) => f.rule_version ?? "—" },
          { label: t("rules.facts"), cell: (f) => <ul class="plain kv">{Object.entries(f.facts).filter(([, v]) => typeof v !== "object")
            .map(([k, v]) => <li key={k}><span class="muted">{k}:</span> {String(v)}</li>)}</ul> },
        ]} />
      ))}
    </Section>
  );
}

function Rules() {
  const me = useStore(meStore);
  const admin = me?.role === "admin";
  const rules = useLoad(() => get<{ items: Rule[] }>("/rules?limit=200"));
  const names = useLoad(loadNames);
  const [open, setOpen] = useState<{ id: string; what: "edit" | "versions" } | null>(null);
  const [run, busy, notice] = useAction();
  const toggle = (id: string, enabled: boolean) => run(async () => {
    await api("PATCH", `/admin/rules/${id}`, { body: { enabled } });
    await rules.reload();
  });
  const remove = (id: string) => run(async () => {
    await api("DELETE", `/admin/rules/${id}`);
    if (open?.id === id) setOpen(null);
    await rules.reload();
    return t("rules.deleted");
  });
  const items = rules.data?.items ?? [];
  const picked = open ? items.find((r) => r.rule_id === open.id) : undefined;
  const pick = (id: string, what: "edit" | "versions") =>
    setOpen(open?.id === id && open.what === what ? null : { id, what });
  return (
    <>
      <Section title={t("rules.list")}>
        <LoadState loaded={rules} empty={!!rules.data && items.length === 0} />
        <Alert notice={notice} />
        {items.length > 0 && (
          <Table rows={items} rowKey={(r) => r.rule_id} columns={[
            { label: t("rules.name"), cell: (r) => r.name },
            { label: t("rules.scope"), cell: (r) => r.scope === "pool" ? (names.data?.pool(r.pool_id) ?? "…") : t(`rules.scope.${r.scope}` as Key) },
            { label: t("rules.if"), cell: (r) => <span><span class="muted">{t(`rules.kind.${r.collector.kind}` as Key)}:</span> {conditionsText(r.conditions)}</span> },
            { label: t("rules.action"), cell: (r) => t(`rules.action.${r.action.type}` as Key) },
            { label: t("common.status"), cell: (r) => (
              <div class="stack start">
                <Badge value={r.enabled ? "ok" : "muted"} text={r.enabled ? t("rules.enabled") : t("rules.disabled")} />
                <Button kind="link" name={`versions-${r.rule_id}`} onClick={() => pick(r.rule_id, "versions")}>
                  {t("rules.version_n", { version: r.version })}
                </Button>
              </div>) },
            ...(admin ? [{ label: t("common.actions"), cell: (r: Rule) => (
              <div class="row">
                <Button busy={busy} name={`edit-${r.rule_id}`} onClick={() => pick(r.rule_id, "edit")}>{t("rules.edit")}</Button>
                <Button busy={busy} onClick={() => void toggle(r.rule_id, !r.enabled)}>{r.enabled ? t("rules.disable") : t("rules.enable")}</Button>
                <Button kind="danger" busy={busy} onClick={() => void remove(r.rule_id)}>{t("common.delete")}</Button>
              </div>) }] : []),
          ]} />
        )}
      </Section>
      {picked && open?.what === "edit" && admin && (
        <EditRule key={picked.rule_id} rule={picked} names={names.data} onSaved={() => void rules.reload()} onClose={() => setOpen(null)} />
      )}
      {picked && open?.what === "versions" && (
        <Versions key={picked.rule_id} rule={picked} names={names.data} onClose={() => setOpen(null)} />
      )}
      <Editor admin={admin} onSaved={() => void rules.reload()} />
      <Explain />
    </>
  );
}

const screen: Screen = {
  path: "/rules", access: ["manager", "admin"], title: "rules.title", component: Rules,
  nav: { group: "review", order: 5 },
};
export default screen;
