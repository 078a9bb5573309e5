import { get } from "../api";
import { clock, dateTime, number } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { Badge, Facts, LoadState, Money, Section, Table, useLoad } from "../ui";

interface Dashboard {
  generated_at: string;
  unavailable: { part: "task_flow" | "money" | "support"; code: string; message: string }[];
  task_flow: null | {
    pools_by_status: Record<string, number>; tasks_total: number; tasks_open: number; tasks_completed: number;
    assignments_by_status: Record<string, number>; pools_truncated: boolean;
    pools: { pool_id: string; name: string; status: string; tasks_total: number; tasks_open: number; tasks_completed: number; assignments_by_status: Record<string, number> }[];
  };
  money: null | {
    totals: { currency: string; charged_minor: number; credited_to_workers_minor: number; assignment_credits_minor: number; bonuses_minor: number; platform_revenue_minor: number; available_minor: number; on_hold_minor: number; paid_minor: number }[];
    counts: { assignment_credits: number; bonuses: number; workers: number; payouts_pending: number; payouts_approved: number; payouts_rejected: number };
  };
  support: null | { open: number; answered: number; closed: number; median_first_answer_s: number | null };
}

/** A part whose service did not answer: said in its place, the rest of the page stays. */
function Away({ d, part }: { d: Dashboard; part: Dashboard["unavailable"][number]["part"] }) {
  if (!d.unavailable.some((u) => u.part === part)) return null;
  return <p class="alert alert-info" role="status" data-testid={`away-${part}`}>{t("dashboard.part_away")}</p>;
}

function AdminDashboard() {
  const loaded = useLoad(() => get<Dashboard>("/admin/dashboard"), [], ["review_queue", "payouts", "tickets"]);
  const d = loaded.data;
  return (
    <>
      <LoadState loaded={loaded} />
      {d && (
        <>
          <p class="muted">{t("dashboard.generated", { at: dateTime(d.generated_at) })}</p>
          <Section title={t("dashboard.flow")}>
            <Away d={d} part="task_flow" />
            {d.task_flow && <>
            <Facts items={[
              [t("stats.tasks_total"), number(d.task_flow.tasks_total)],
              [t("stats.tasks_open"), number(d.task_flow.tasks_open)],
              [t("stats.tasks_completed"), number(d.task_flow.tasks_completed)],
              ...Object.entries(d.task_flow.assignments_by_status).map(([k, v]) => [t(`assignment.${k}` as Key), number(v)] as [string, string]),
              ...Object.entries(d.task_flow.pools_by_status).map(([k, v]) => [t("dashboard.pools_in", { status: t(`pool.${k}` as Key) }), number(v)] as [string, string]),
            ]} />
            {d.task_flow.pools.length > 0 && (
              <Table rows={d.task_flow.pools} rowKey={(p) => p.pool_id} columns={[
                { label: t("common.pool"), cell: (p) => p.name },
                { label: t("common.status"), cell: (p) => <Badge value={p.status} text={t(`pool.${p.status}` as Key)} /> },
                { label: t("stats.tasks_total"), cell: (p) => number(p.tasks_total), class: "num" },
                { label: t("stats.tasks_open"), cell: (p) => number(p.tasks_open), class: "num" },
                { label: t("stats.tasks_completed"), cell: (p) => number(p.tasks_completed), class: "num" },
                { label: t("dashboard.in_review"), cell: (p) => number(p.assignments_by_status.SUBMITTED ?? 0), class: "num" },
              ]} />
            )}
            {d.task_flow.pools_truncated && <p class="muted">{t("dashboard.truncated")}</p>}
            </>}
          </Section>
          <Section title={t("dashboard.money")}>
            <Away d={d} part="money" />
            {d.money && <>
            {d.money.totals.length === 0 && <p class="muted">{t("common.empty")}</p>}
            {d.money.totals.map((m) => (
              <div key={m.currency}>
                <h3>{m.currency}</h3>
                <Facts items={[
                  [t("dashboard.charged"), <Money minor={m.charged_minor} currency={m.currency} />],
                  [t("dashboard.credited"), <Money minor={m.credited_to_workers_minor} currency={m.currency} />],
                  [t("dashboard.bonuses"), <Money minor={m.bonuses_minor} currency={m.currency} />],
                  [t("dashboard.revenue"), <Money minor={m.platform_revenue_minor} currency={m.currency} />],
                  [t("balance.available"), <Money minor={m.available_minor} currency={m.currency} />],
                  [t("balance.on_hold"), <Money minor={m.on_hold_minor} currency={m.currency} />],
                  [t("balance.paid"), <Money minor={m.paid_minor} currency={m.currency} />],
                ]} />
              </div>
            ))}
            <Facts items={[
              [t("dashboard.workers"), number(d.money.counts.workers)],
              [t("dashboard.credits"), number(d.money.counts.assignment_credits)],
              [t("dashboard.payouts_pending"), number(d.money.counts.payouts_pending)],
              [t("dashboard.payouts_approved"), number(d.money.counts.payouts_approved)],
              [t("dashboard.payouts_rejected"), number(d.money.counts.payouts_rejected)],
            ]} />
            </>}
          </Section>
          <Section title={t("dashboard.support")}>
            <Away d={d} part="support" />
            {d.support && <Facts items={[
              [t("dashboard.open_tickets"), number(d.support.open)],
              [t("dashboard.answered_tickets"), number(d.support.answered)],
              [t("dashboard.closed_tickets"), number(d.support.closed)],
              [t("dashboard.median_first_answer"), d.support.median_first_answer_s === null ? "—" : clock(d.support.median_first_answer_s)],
            ]} />}
          </Section>
        </>
      )}
    </>
  );
}

const screen: Screen = {
  path: "/admin/dashboard", access: ["admin"], title: "dashboard.title", component: AdminDashboard,
  nav: { group: "owner", order: 1 },
};
export default screen;
