import { useState } from "preact/hooks";
import { get } from "../api";
import { number, percent } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { Facts, LoadState, Section, SelectField, useLoad } from "../ui";

export interface PoolStats {
  pool_id: string; status: string; tasks_total: number; control_tasks: number; tasks_open: number;
  tasks_completed: number; assignments_by_status: Record<string, number>; pending_review: number;
  accepted: number; rejected: number; acceptance_rate: number | null;
  throughput_per_hour: { hour_start: string; decisions: number }[];
  top_workers: { worker_id: string; accepted: number }[];
}

function Stats() {
  const names = useLoad(loadNames);
  const [pool, setPool] = useState("");
  const pools = names.data?.pools ?? [];
  const chosen = pool || pools[0]?.pool_id || "";
  const stats = useLoad(() => chosen ? get<PoolStats>(`/pools/${encodeURIComponent(chosen)}/stats`) : Promise.resolve(null),
    [chosen], ["review_queue"]);
  const s = stats.data;
  const peak = Math.max(1, ...(s?.throughput_per_hour ?? []).map((h) => h.decisions));
  return (
    <>
      <LoadState loaded={names} empty={!!names.data && pools.length === 0} />
      {pools.length > 0 && (
        <SelectField label={t("common.pool")} value={chosen} onChange={setPool}
          options={pools.map((p) => [p.pool_id, p.name])} />
      )}
      {chosen && <LoadState loaded={stats} />}
      {s && (
        <>
          <Section title={t("stats.tasks")}>
            <Facts items={[
              [t("stats.tasks_total"), number(s.tasks_total)],
              [t("stats.control_tasks"), number(s.control_tasks)],
              [t("stats.tasks_open"), number(s.tasks_open)],
              [t("stats.tasks_completed"), number(s.tasks_completed)],
              ...Object.entries(s.assignments_by_status).map(([k, v]) =>
                [t(`assignment.${k}` as Key), number(v)] as [string, string]),
            ]} />
          </Section>
          <Section title={t("stats.review")}>
            <Facts items={[
              [t("stats.pending"), number(s.pending_review)],
              [t("stats.accepted"), number(s.accepted)],
              [t("stats.rejected"), number(s.rejected)],
              [t("stats.acceptance_rate"), s.acceptance_rate === null ? "—" : percent(s.acceptance_rate)],
            ]} />
            <h3>{t("stats.throughput")}</h3>
            <ol class="bars" aria-label={t("stats.throughput")}>
              {s.throughput_per_hour.map((h) => (
                <li key={h.hour_start} title={`${new Date(h.hour_start).toLocaleTimeString()} — ${h.decisions}`}>
                  <span class={`bar h${Math.round((h.decisions / peak) * 10)}`} />
                  <span class="sr-only">{new Date(h.hour_start).toLocaleTimeString()}: {h.decisions}</span>
                </li>
              ))}
            </ol>
          </Section>
        </>
      )}
    </>
  );
}

const screen: Screen = {
  path: "/stats", access: ["manager", "admin"], title: "stats.title", component: Stats,
  nav: { group: "review", order: 2 },
};
export default screen;
