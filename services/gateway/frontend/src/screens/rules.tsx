import { useState } from "preact/hooks";
import { ApiError, api, get, meStore, post } from "../api";
import { errorText } from "../errors";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { useStore } from "../store";
import {
  Alert, Badge, Button, Form, LoadState, Section, SelectField, Table, TextField, When, useAction, useLoad, type Notice,
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
  name: string; scope: string; pool_id: string; kind: string; history_size: string; answer_threshold: string;
  fast_submit_threshold_seconds: string; conditions: Cond[]; action: Record<string, string>;
}
const EMPTY: Draft = { name: "", scope: "pool", pool_id: "", kind: "", history_size: "", answer_threshold: "",
  fast_submit_threshold_seconds: "", conditions: [{ field: "", operator: "", value: "" }], action: { type: "" } };

const opt = (v: string) => (v.trim() === "" ? null : v.trim());
const num = (v: string) => (v.trim() === "" ? null : Number(v));

function toDraft(d: Draft) {
  const action: Record<string, unknown> = { type: opt(d.action.type ?? "") };
  for (const p of ACTION_PARAMS[d.action.type] ?? []) {
    const v = d.action[p] ?? "";
    action[p] = NUMERIC.has(p) ? num(v) : opt(v);
  }
  return {
    name: opt(d.name), scope: opt(d.scope), pool_id: d.scope === "pool" ? opt(d.pool_id) : null,
    collector: { kind: opt(d.kind), history_size: num(d.history_size),
      ...(d.kind === "majority_vote" ? { answer_threshold: num(d.answer_threshold) } : {}),
      ...(d.kind === "fast_answers" ? { fast_submit_threshold_seconds: num(d.fast_submit_threshold_seconds) } : {}) },
    conditions: d.conditions.map((c) => ({ field: opt(c.field), operator: opt(c.operator),
      value: c.value.trim() === "" ? null : Number.isNaN(Number(c.value)) ? c.value.trim() : Number(c.value) })),
    action,
  };
}

/** "conditions[0].value" -> the editor's own field key "cond.0.value". */
function missingKeys(e: unknown): Set<string> {
  if (!(e instanceof ApiError) || e.code !== "rule_incomplete" || !Array.isArray(e.details)) return new Set();
  return new Set((e.details as string[]).map((p) => p.replace(/^conditions\[(\d+)\]\./, "cond.$1.")
    .replace(/^collector\./, "").replace(/^action\./, "action.")));
}

function Editor({ onSaved, admin }: { onSaved: () => void; admin: boolean }) {
  const names = useLoad(loadNames);
  const [d, setD] = useState<Draft>(EMPTY);
  const [missing, setMissing] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<Notice>(null);
  const [busy, setBusy] = useState(false);
  const [hits, setHits] = useState<{ events_scanned: number; workers: string[]; truncated: boolean } | null>(null);
  const req = (key: string) => (missing.has(key) ? t("rules.required") : undefined);
  const set = (patch: Partial<Draft>) => setD({ ...d, ...patch });
  const setCond = (i: number, patch: Partial<Cond>) => set({ conditions: d.conditions.map((c, j) => (j === i ? { ...c, ...patch } : c)) });
  const call = async (what: "save" | "backtest") => {
    setBusy(true); setNotice(null); setHits(null);
    try {
      if (what === "save") {
        await post("/admin/rules", toDraft(d));
        setD(EMPTY); setMissing(new Set());
        setNotice({ kind: "success", text: t("rules.saved") });
        onSaved();
      } else {
        setHits(await post("/rules/backtest", { rule: toDraft(d) }));
        setMissing(new Set());
      }
    } catch (e) {
      setMissing(missingKeys(e));
      setNotice({ kind: "error", text: errorText(e) });
    } finally {
      setBusy(false);
    }
  };
  const pools = names.data?.pools ?? [];
  const fields = FIELDS[d.kind] ?? [];
  return (
    <Section title={t("rules.new")}>
      <p>{t("rules.editor_explain")}</p>
      <Form onSubmit={() => void call("save")} label={t("rules.new")}>
        <TextField label={t("rules.name")} value={d.name} onInput={(v) => set({ name: v })} error={req("name")} name="rule_name" />
        <div class="row">
          <SelectField label={t("rules.scope")} value={d.scope} onChange={(v) => set({ scope: v })} error={req("scope")}
            options={[["pool", t("rules.scope.pool")], ["project", t("rules.scope.project")], ["platform", t("rules.scope.platform")]]} />
          {d.scope === "pool" && (
            <SelectField label={t("common.pool")} value={d.pool_id} onChange={(v) => set({ pool_id: v })} error={req("pool_id")}
              options={[["", t("common.choose")], ...pools.map((p) => [p.pool_id, p.name] as [string, string])]} />
          )}
        </div>
        <fieldset>
          <legend>{t("rules.collector")}</legend>
          <div class="row">
            <SelectField label={t("rules.kind")} value={d.kind} onChange={(v) => set({ kind: v, conditions: [{ field: "", operator: "", value: "" }] })}
              error={req("kind")} options={[["", t("common.choose")], ...Object.keys(FIELDS).map((k) => [k, t(`rules.kind.${k}` as Key)] as [string, string])]} />
            <TextField label={t("rules.history_size")} value={d.history_size} onInput={(v) => set({ history_size: v })}
              inputMode="numeric" hint={t("rules.history_hint")} error={req("history_size")} />
            {d.kind === "majority_vote" && <TextField label={t("rules.answer_threshold")} value={d.answer_threshold}
              onInput={(v) => set({ answer_threshold: v })} inputMode="numeric" error={req("answer_threshold")} />}
            {d.kind === "fast_answers" && <TextField label={t("rules.fast_threshold")} value={d.fast_submit_threshold_seconds}
              onInput={(v) => set({ fast_submit_threshold_seconds: v })} inputMode="numeric" error={req("fast_submit_threshold_seconds")} />}
          </div>
        </fieldset>
        <fieldset>
          <legend>{t("rules.if")}</legend>
          {d.conditions.map((c, i) => (
            <div class="row" key={i}>
              <SelectField label={t("rules.field")} value={c.field} onChange={(v) => setCond(i, { field: v })} error={req(`cond.${i}.field`)}
                options={[["", t("common.choose")], ...fields.map((f) => [f, t(`rules.field.${f}` as Key)] as [string, string])]} />
              <SelectField label={t("rules.operator")} value={c.operator} onChange={(v) => setCond(i, { operator: v })}
                error={req(`cond.${i}.operator`)} options={[["", "—"], ...OPERATORS.map((o) => [o, o] as [string, string])]} />
              <TextField label={t("rules.value")} value={c.value} onInput={(v) => setCond(i, { value: v })} error={req(`cond.${i}.value`)} />
              {d.conditions.length > 1 && <Button kind="link" onClick={() => set({ conditions: d.conditions.filter((_, j) => j !== i) })}>{t("common.remove")}</Button>}
            </div>
          ))}
          <Button onClick={() => set({ conditions: [...d.conditions, { field: "", operator: "", value: "" }] })}>{t("rules.add_condition")}</Button>
        </fieldset>
        <fieldset>
          <legend>{t("rules.then")}</legend>
          <div class="row">
            <SelectField label={t("rules.action")} value={d.action.type ?? ""} onChange={(v) => set({ action: { type: v } })} error={req("action.type")}
              options={[["", t("common.choose")], ...ACTIONS.map((a) => [a, t(`rules.action.${a}` as Key)] as [string, string])]} />
            {(ACTION_PARAMS[d.action.type] ?? []).map((p) => p === "scope" || p === "duration_unit" ? (
              <SelectField key={p} label={t(`rules.param.${p}` as Key)} value={d.action[p] ?? ""} error={req(`action.${p}`)}
                onChange={(v) => set({ action: { ...d.action, [p]: v } })}
                options={[["", t("common.choose")], ...(p === "scope" ? ["pool", "project", "all"] : ["minutes", "hours", "days", "permanent"])
                  .map((v) => [v, t(`rules.${p}.${v}` as Key)] as [string, string])]} />
            ) : (
              <TextField key={p} label={t(`rules.param.${p}` as Key)} value={d.action[p] ?? ""} error={req(`action.${p}`)}
                onInput={(v) => set({ action: { ...d.action, [p]: v } })} inputMode={NUMERIC.has(p) ? "numeric" : undefined} />
            ))}
          </div>
        </fieldset>
        <div class="row">
          {admin && <Button type="submit" kind="primary" busy={busy}>{t("rules.save")}</Button>}
          <Button onClick={() => void call("backtest")} busy={busy}>{t("rules.backtest")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
      {hits && (
        <p class="alert alert-info" role="status" data-testid="backtest-result">
          {t("rules.backtest_result", { n: hits.workers.length, events: hits.events_scanned })}
          {hits.workers.length > 0 && <> {hits.workers.map((w) => names.data?.user(w) ?? w).join(", ")}</>}
        </p>
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
  const rules = useLoad(() => get<{ items: { rule_id: string; name: string; scope: string; pool_id: string | null; collector: { kind: string }; action: { type: string }; enabled: boolean; created_at: string }[] }>("/rules?limit=200"));
  const names = useLoad(loadNames);
  const [run, busy, notice] = useAction();
  const toggle = (id: string, enabled: boolean) => run(async () => {
    await api("PATCH", `/admin/rules/${id}`, { body: { enabled } });
    await rules.reload();
  });
  const remove = (id: string) => run(async () => {
    await api("DELETE", `/admin/rules/${id}`);
    await rules.reload();
    return t("rules.deleted");
  });
  const items = rules.data?.items ?? [];
  return (
    <>
      <Section title={t("rules.list")}>
        <LoadState loaded={rules} empty={!!rules.data && items.length === 0} />
        <Alert notice={notice} />
        {items.length > 0 && (
          <Table rows={items} rowKey={(r) => r.rule_id} columns={[
            { label: t("rules.name"), cell: (r) => r.name },
            { label: t("rules.scope"), cell: (r) => r.scope === "pool" ? (names.data?.pool(r.pool_id) ?? "…") : t(`rules.scope.${r.scope}` as Key) },
            { label: t("rules.kind"), cell: (r) => t(`rules.kind.${r.collector.kind}` as Key) },
            { label: t("rules.action"), cell: (r) => t(`rules.action.${r.action.type}` as Key) },
            { label: t("common.status"), cell: (r) => <Badge value={r.enabled ? "ok" : "muted"} text={r.enabled ? t("rules.enabled") : t("rules.disabled")} /> },
            { label: t("common.created"), cell: (r) => <When at={r.created_at} /> },
            ...(admin ? [{ label: t("common.actions"), cell: (r: typeof items[number]) => (
              <div class="row">
                <Button busy={busy} onClick={() => void toggle(r.rule_id, !r.enabled)}>{r.enabled ? t("rules.disable") : t("rules.enable")}</Button>
                <Button kind="danger" busy={busy} onClick={() => void remove(r.rule_id)}>{t("common.delete")}</Button>
              </div>) }] : []),
          ]} />
        )}
      </Section>
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
