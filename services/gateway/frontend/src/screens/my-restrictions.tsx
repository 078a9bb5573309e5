// The worker's restrictions and rejections, each with its cause (the rule and its
// version with the counts and thresholds it showed, or a manager's hand), and an appeal:
// once per restriction or rejection, with the outcome when a manager has decided.
import { useState } from "preact/hooks";
import { get, post } from "../api";
import { shortId } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { Alert, Badge, Button, Facts, Form, LoadState, Section, TextField, When, useAction, useLoad } from "../ui";

interface Evidence {
  values: Record<string, number | string | null>;
  conditions: { field: string; operator: string; value: number | string }[];
  history_size: number | null;
}
interface Cause { source: "rule" | "manual"; rule_id: string | null; rule_name: string | null; rule_version: number | null; evidence: Evidence | null }
interface MyRestriction {
  restriction_id: string; scope: "pool" | "project" | "all"; pool_id: string | null; project_id: string | null;
  applied_at: string; until: string | null; lifted_at: string | null; cause: Cause;
}
interface Decision { assignment_id: string; pool_id: string; status: "accepted" | "rejected"; comment: string | null; decided_at: string; cause: "manager" | "auto" | "rules" | null }
export interface Appeal {
  appeal_id: string; worker_id: string; kind: "rejection" | "restriction"; subject_id: string; pool_id: string | null;
  message: string; status: "pending" | "upheld" | "denied"; reply: string | null; filed_at: string;
  decided_by: string | null; decided_at: string | null;
}
interface Page<T> { items: T[]; total: number }

function CauseText({ cause }: { cause: Cause }) {
  if (cause.source === "manual") return <>{t("appeals.cause.manual")}</>;
  const ev = cause.evidence;
  return (
    <>
      {t("appeals.cause.rule", { name: cause.rule_name ?? "—", version: cause.rule_version ?? 1 })}
      {ev && (
        <ul class="plain" data-testid="evidence">
          {ev.conditions.map((c, i) => (
            <li key={i}>{t("appeals.evidence", { field: c.field, value: String(ev.values[c.field] ?? "—"), operator: c.operator, threshold: String(c.value) })}</li>
          ))}
          {ev.history_size ? <li>{t("appeals.history", { n: ev.history_size })}</li> : null}
        </ul>
      )}
      {!ev && <span class="muted"> {t("appeals.no_evidence")}</span>}
    </>
  );
}

export function AppealOutcome({ appeal }: { appeal: Appeal }) {
  return (
    <div class={`alert ${appeal.status === "upheld" ? "alert-success" : appeal.status === "denied" ? "alert-error" : "alert-info"}`}
      data-testid="appeal-outcome">
      <Badge value={appeal.status} text={t(`appeals.status.${appeal.status}` as Key)} />{" "}
      {appeal.reply && <>{t("appeals.reply")}: {appeal.reply}</>}
      {appeal.decided_at && <> (<When at={appeal.decided_at} />)</>}
    </div>
  );
}

function AppealBox({ kind, subjectId, appeal, onDone }: {
  kind: "rejection" | "restriction"; subjectId: string; appeal: Appeal | undefined; onDone: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [message, setMessage] = useState("");
  const [run, busy, notice] = useAction();
  if (appeal) return <AppealOutcome appeal={appeal} />;
  const submit = () => run(async () => {
    await post("/worker/appeals", { kind, subject_id: subjectId, message: message.trim() });
    setOpen(false);
    onDone();
    return t("appeals.filed");
  });
  return (
    <>
      {!open && <Button onClick={() => setOpen(true)}>{t("appeals.appeal")}</Button>}
      {open && (
        <Form onSubmit={() => void submit()} label={t("appeals.appeal")}>
          <TextField label={t("appeals.message")} value={message} onInput={setMessage} multiline rows={3}
            maxLength={2000} required hint={t("appeals.once")} />
          <Button type="submit" kind="primary" busy={busy} disabled={!message.trim()}>{t("appeals.send")}</Button>
        </Form>
      )}
      <Alert notice={notice} />
    </>
  );
}

function where(r: MyRestriction): string {
  if (r.scope === "all") return t("restrictions.scope.all");
  return `${t(`restrictions.scope.${r.scope}` as Key)}: ${shortId(r.scope === "pool" ? r.pool_id : r.project_id)}`;
}

function MyRestrictions() {
  const restrictions = useLoad(() => get<Page<MyRestriction>>("/worker/restrictions?limit=100"), [], ["restrictions"]);
  const rejections = useLoad(() => get<Page<Decision>>("/worker/decisions?status=rejected&limit=100"));
  const appeals = useLoad(() => get<Page<Appeal>>("/worker/appeals?limit=500"));
  const reload = () => { void appeals.reload(); void restrictions.reload(); void rejections.reload(); };
  const appealOf = (kind: string, id: string) => appeals.data?.items.find((a) => a.kind === kind && a.subject_id === id);
  const rs = restrictions.data;
  const rj = rejections.data;
  // an upheld rejection is an acceptance now: it left the rejected list, its appeal stays
  const upheld = (appeals.data?.items ?? []).filter((a) => a.kind === "rejection" && a.status === "upheld"
    && !rj?.items.some((d) => d.assignment_id === a.subject_id));
  return (
    <>
      <p class="lead">{t("appeals.worker_explain")}</p>
      <Section title={t("appeals.my_restrictions")}>
        <LoadState loaded={restrictions} empty={!!rs && rs.items.length === 0} />
        {rs && rs.items.map((r) => (
          <div class="card" key={r.restriction_id} data-testid="my-restriction">
            <Facts items={[
              [t("restrictions.where"), where(r)],
              [t("appeals.cause"), <CauseText cause={r.cause} />],
              [t("restrictions.applied"), <When at={r.applied_at} />],
              [t("restrictions.until"), r.lifted_at ? <>{t("restrictions.lifted")} <When at={r.lifted_at} /></>
                : r.until ? <When at={r.until} /> : t("restrictions.permanent")],
            ]} />
            {(!r.lifted_at || appealOf("restriction", r.restriction_id)) && (
              <AppealBox kind="restriction" subjectId={r.restriction_id} appeal={appealOf("restriction", r.restriction_id)} onDone={reload} />
            )}
          </div>
        ))}
      </Section>
      <Section title={t("appeals.my_rejections")}>
        <LoadState loaded={rejections} empty={!!rj && rj.items.length === 0 && upheld.length === 0} />
        {rj && rj.items.map((d) => (
          <div class="card" key={d.assignment_id} data-testid="my-rejection">
            <Facts items={[
              [t("appeals.assignment"), shortId(d.assignment_id)],
              [t("appeals.cause"), t(`appeals.decided_by.${d.cause ?? "manager"}` as Key)],
              [t("appeals.comment"), d.comment || "—"],
              [t("appeals.decided_at"), <When at={d.decided_at} />],
            ]} />
            <AppealBox kind="rejection" subjectId={d.assignment_id} appeal={appealOf("rejection", d.assignment_id)} onDone={reload} />
          </div>
        ))}
        {upheld.map((a) => (
          <div class="card" key={a.appeal_id} data-testid="my-rejection">
            <Facts items={[[t("appeals.assignment"), shortId(a.subject_id)]]} />
            <AppealOutcome appeal={a} />
          </div>
        ))}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/my-restrictions", access: ["worker"], title: "appeals.worker_title", component: MyRestrictions,
  nav: { group: "work", order: 5 },
};
export default screen;
