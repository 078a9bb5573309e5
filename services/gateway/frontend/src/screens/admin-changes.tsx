// Confirmed configuration changes ("safe mode"): a proposal is a diff against the current
// value and changes nothing until an admin confirms it; an admin may patch directly; an
// applied change is undone by a revert, itself a change. Money settings ask for the TOTP code.
import { useState } from "preact/hooks";
import { api, get, meStore, post } from "../api";
import { percent, shortId } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames, type Names } from "../staff";
import { useStore } from "../store";
import type { Page } from "../types";
import { Alert, Badge, Button, Form, LoadState, Section, SelectField, Table, TextField, When, done, useAction, useLoad, useStepUp, type Notice } from "../ui";

type Kind = "pool.assignment_timeout_s" | "pool.overlap" | "trust_limits" | "rule.params" | "worker_share";
type State = "proposed" | "applied" | "rejected" | "failed" | "stale";
interface Condition { field: string; operator: string; value: number | string }
interface Limits { max_active: number; min_pause_s: number; assignment_timeout_s: number | null }
interface Change {
  change_id: string; kind: Kind; target: string | null; before: unknown; after: unknown; money: boolean;
  state: State; patch: boolean; reason: string; reverts: string | null; reverted_by: string | null;
  proposed_by: string; proposed_by_login: string | null; created_at: string; decided_by: string | null;
  decided_by_login: string | null; decided_at: string | null;
  decision_reason: string | null; current: unknown; error: { code: string; message: string } | null;
}
interface Rule { rule_id: string; name: string; conditions: Condition[]; deleted: boolean }

const KINDS: Kind[] = ["pool.assignment_timeout_s", "pool.overlap", "trust_limits", "rule.params", "worker_share"];
const STATES: State[] = ["proposed", "applied", "rejected", "failed", "stale"];
const LEVELS = ["new", "verified", "trusted"];
const TONE: Record<State, string> = { proposed: "pending", applied: "ok", rejected: "rejected", failed: "down", stale: "archived" };
const kindName = (k: Kind) => t(`changes.kind.${k}` as Key);

function show(kind: Kind, v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (kind === "pool.assignment_timeout_s") return t("changes.seconds", { n: Number(v) });
  if (kind === "worker_share") return percent(Number(v) / 10000);
  if (kind === "trust_limits") {
    const l = v as Limits;
    return t("changes.limits", { max: l.max_active, pause: l.min_pause_s, timeout: l.assignment_timeout_s ?? "—" });
  }
  if (kind === "rule.params") return (v as { conditions: Condition[] }).conditions.map((c) => `${c.field} ${c.operator} ${c.value}`).join("; ");
  return String(v);
}

function targetName(c: { kind: Kind; target: string | null }, names: Names | null, rules: Map<string, string>): string {
  if (c.kind === "trust_limits") return t(`trust.${c.target}` as Key);
  if (c.kind === "rule.params") return rules.get(c.target ?? "") ?? c.target ?? "—";
  if (c.kind === "worker_share" && !c.target) return t("share.default");
  return names ? names.pool(c.target) : "…";
}

function ProposeForm({ admin, names, rules, onDone }: { admin: boolean; names: Names | null; rules: Rule[]; onDone: () => void }) {
  const [kind, setKind] = useState<Kind>("pool.assignment_timeout_s");
  const [target, setTarget] = useState("");
  const [num, setNum] = useState("");
  const [limits, setLimits] = useState({ max_active: "", min_pause_s: "", assignment_timeout_s: "" });
  const [conds, setConds] = useState<string[]>([]);
  const [reason, setReason] = useState("");
  const [run, busy, notice] = useAction();
  const mfa = useStepUp();
  const rule = rules.find((r) => r.rule_id === target);
  const pickKind = (k: Kind) => { setKind(k); setTarget(""); setNum(""); setConds([]); };
  const pickTarget = (v: string) => { setTarget(v); setConds((rules.find((r) => r.rule_id === v)?.conditions ?? []).map((c) => String(c.value))); };
  const numberOf = (s: string) => (s.trim() === "" ? NaN : Number(s.trim().replace(",", ".")));
  const setting = () => {
    if (kind === "trust_limits") {
      return { kind, level: target, value: { max_active: numberOf(limits.max_active), min_pause_s: numberOf(limits.min_pause_s),
        assignment_timeout_s: limits.assignment_timeout_s.trim() ? numberOf(limits.assignment_timeout_s) : null } };
    }
    if (kind === "rule.params") {
      return { kind, rule_id: target, value: { conditions: (rule?.conditions ?? []).map((c, i) => ({
        field: c.field, operator: c.operator, value: Number.isNaN(numberOf(conds[i] ?? "")) ? conds[i] : numberOf(conds[i]) })) } };
    }
    if (kind === "worker_share") return { kind, pool_id: target || null, value: Math.round(numberOf(num) * 10000) };
    return { kind, pool_id: target, value: numberOf(num) };
  };
  const send = (patch: boolean) => run(mfa.withMfa(async () => {
    const c = await api<Change>("POST", patch ? "/admin/changes/patch" : "/admin/changes", { body: { setting: setting(), reason: reason.trim() } });
    onDone();
    return patch ? t("changes.patched_now") : t("changes.proposed_now", { before: show(c.kind, c.before), after: show(c.kind, c.after) });
  }));
  const targets: [string, string][] = kind === "trust_limits" ? LEVELS.map((l) => [l, t(`trust.${l}` as Key)])
    : kind === "rule.params" ? rules.filter((r) => !r.deleted).map((r) => [r.rule_id, r.name])
    : [...(kind === "worker_share" ? [["", t("share.default")] as [string, string]] : []),
       ...(names?.pools ?? []).filter((p) => p.status !== "archived").map((p) => [p.pool_id, p.name] as [string, string])];
  return (
    <Section title={admin ? t("changes.new_or_patch") : t("changes.new")}>
      <Form onSubmit={() => void send(false)} label={t("changes.new")}>
        <div class="row">
          <SelectField label={t("changes.setting")} value={kind} onChange={pickKind}
            options={KINDS.filter((k) => admin || k !== "worker_share").map((k) => [k, kindName(k)])} />
          <SelectField label={t("changes.target")} value={target} onChange={pickTarget}
            options={[...(kind === "worker_share" ? [] : [["", t("common.choose")] as [string, string]]), ...targets]} />
        </div>
        {kind === "trust_limits" ? (
          <div class="row">
            <TextField label={t("trust.max_active")} value={limits.max_active} inputMode="numeric" onInput={(v) => setLimits({ ...limits, max_active: v })} />
            <TextField label={t("trust.min_pause")} value={limits.min_pause_s} inputMode="decimal" onInput={(v) => setLimits({ ...limits, min_pause_s: v })} />
            <TextField label={t("trust.timeout")} value={limits.assignment_timeout_s} inputMode="numeric" hint={t("trust.timeout_hint")}
              onInput={(v) => setLimits({ ...limits, assignment_timeout_s: v })} />
          </div>
        ) : kind === "rule.params" ? (
          <div class="row">
            {(rule?.conditions ?? []).map((c, i) => (
              <TextField key={`${target}-${i}`} label={`${c.field} ${c.operator}`} value={conds[i] ?? ""}
                onInput={(v) => setConds(conds.map((x, j) => (j === i ? v : x)))} />
            ))}
          </div>
        ) : (
          <TextField label={t(kind === "worker_share" ? "changes.new_share" : kind === "pool.overlap" ? "changes.new_overlap" : "changes.new_timeout")}
            value={num} onInput={setNum} inputMode={kind === "worker_share" ? "decimal" : "numeric"} name="change-value"
            hint={kind === "worker_share" ? t("share.hint") : undefined} />
        )}
        <TextField label={t("common.reason")} value={reason} onInput={setReason} maxLength={2000} name="change-reason" />
        <div class="row">
          <Button type="submit" kind="primary" busy={busy}>{t("changes.propose")}</Button>
          {admin && <Button busy={busy} onClick={() => void send(true)}>{t("changes.patch")}</Button>}
        </div>
      </Form>
      {mfa.form}
      <Alert notice={notice} />
    </Section>
  );
}

// The outcome is said above the list (``onDone``): the row itself may leave the list.
function Actions({ c, admin, onDone }: { c: Change; admin: boolean; onDone: (text: string) => void }) {
  const [reason, setReason] = useState("");
  const [run, busy, notice] = useAction();
  const mfa = useStepUp();
  const act = (what: "confirm" | "reject" | "revert") => run(mfa.withMfa(async () => {
    await post(`/admin/changes/${c.change_id}/${what}`, what === "reject" ? { reason: reason.trim() } : {});
    onDone(t(`changes.${what}_done` as Key));
  }));
  return (
    <div class="stack">
      {c.state === "proposed" && admin && (
        <>
          <Button kind="primary" busy={busy} onClick={() => void act("confirm")}>{c.money ? t("changes.confirm_mfa") : t("changes.confirm")}</Button>
          <TextField label={t("changes.reject_reason")} value={reason} onInput={setReason} maxLength={2000} name={`reject-${c.change_id}`} />
          <Button kind="danger" busy={busy} onClick={() => void act("reject")}>{t("changes.reject")}</Button>
        </>
      )}
      {c.state === "applied" && !c.reverted_by && <Button busy={busy} onClick={() => void act("revert")}>{t("changes.revert")}</Button>}
      {mfa.form}
      <Alert notice={notice} />
    </div>
  );
}

function AdminChanges() {
  const me = useStore(meStore);
  const admin = me?.role === "admin";
  const [state, setState] = useState<State | "">("proposed");
  const names = useLoad(loadNames);
  const rules = useLoad(() => get<Page<Rule>>("/rules?limit=500"));
  const list = useLoad(() => get<Page<Change>>(`/admin/changes?limit=200${state ? `&state=${state}` : ""}`), [state]);
  const ruleNames = new Map((rules.data?.items ?? []).map((r) => [r.rule_id, r.name]));
  const n = names.data;
  const [notice, setNotice] = useState<Notice>(null);
  const reload = () => void list.reload();
  const decided = (text: string) => { setNotice(done(text)); reload(); };
  return (
    <>
      <p class="lead">{t("changes.explain")}</p>
      <SelectField label={t("common.status")} value={state} onChange={setState}
        options={[...STATES.map((s) => [s, t(`changes.state.${s}` as Key)] as [State, string]), ["", t("common.all")]]} />
      <Section title={t("changes.list")}>
        <Alert notice={notice} />
        <LoadState loaded={list} empty={!!list.data && list.data.items.length === 0} />
        {list.data && list.data.items.length > 0 && (
          <Table rows={list.data.items} rowKey={(c) => c.change_id} columns={[
            { label: t("common.when"), cell: (c) => <When at={c.created_at} /> },
            { label: t("changes.setting"), cell: (c) => <>{kindName(c.kind)}<br /><span class="muted">{targetName(c, n, ruleNames)}</span></> },
            { label: t("changes.diff"), cell: (c) => (
              <span class="diff" data-testid={`diff-${c.change_id}`}>
                <del class="diff-old">{show(c.kind, c.before)}</del> → <ins class="diff-new">{show(c.kind, c.after)}</ins>
                {c.state === "stale" && <><br /><span class="muted">{t("changes.found", { value: show(c.kind, c.current) })}</span></>}
              </span>) },
            { label: t("changes.by"), cell: (c) => <><span data-testid={`by-${c.change_id}`}>{c.proposed_by_login ?? shortId(c.proposed_by)}</span>{c.patch && <> · {t("changes.patch_mark")}</>}{c.reverts && <> · {t("changes.revert_mark")}</>}
              {c.reason && <><br /><span class="pre">{c.reason}</span></>}</> },
            { label: t("common.status"), cell: (c) => <>
              <Badge value={TONE[c.state]} text={t(`changes.state.${c.state}` as Key)} />
              {c.decided_by && <><br /><span class="muted">{c.decided_by_login ?? shortId(c.decided_by)}{c.decision_reason ? `: ${c.decision_reason}` : ""}</span></>}
              {c.error && <><br /><span class="muted">{c.error.message}</span></>}
              {c.reverted_by && <><br /><span class="muted">{t("changes.reverted")}</span></>}
            </> },
            { label: t("common.actions"), cell: (c) => <Actions key={`${c.change_id}-${c.state}`} c={c} admin={admin} onDone={decided} /> },
          ]} />
        )}
      </Section>
      <ProposeForm admin={admin} names={n} rules={rules.data?.items ?? []} onDone={reload} />
    </>
  );
}

const screen: Screen = {
  path: "/admin/changes", access: ["manager", "admin"], title: "changes.title", component: AdminChanges,
  // managers propose and admins confirm: the group both see, beside the other settings
  nav: { group: "setup", order: 3 },
};
export default screen;
