import { get } from "../api";
import { number } from "../format";
import { t } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { LoadState, Section, Table, useLoad } from "../ui";
import type { PoolStats } from "./stats";

/** Accepted answers per worker, summed over every pool's top list. */
function TopWorkers() {
  const loaded = useLoad(async () => {
    const names = await loadNames();
    const live = names.pools.filter((p) => p.status !== "archived");
    const stats = await Promise.all(live.map((p) => get<PoolStats>(`/pools/${encodeURIComponent(p.pool_id)}/stats?top=100`)));
    const total = new Map<string, { accepted: number; pools: number }>();
    for (const s of stats) {
      for (const w of s.top_workers) {
        const row = total.get(w.worker_id) ?? { accepted: 0, pools: 0 };
        row.accepted += w.accepted;
        row.pools += 1;
        total.set(w.worker_id, row);
      }
    }
    const rows = [...total.entries()].map(([worker_id, v]) => ({ worker_id, ...v }))
      .sort((a, b) => b.accepted - a.accepted).slice(0, 50);
    return { rows, names };
  }, [], ["review_queue"]);
  const d = loaded.data;
  return (
    <Section title={t("top.title")}>
      <p>{t("top.explain")}</p>
      <LoadState loaded={loaded} empty={!!d && d.rows.length === 0} />
      {d && d.rows.length > 0 && (
        <Table rows={d.rows} rowKey={(r) => r.worker_id} columns={[
          { label: "#", cell: (r) => String(d.rows.indexOf(r) + 1), class: "num" },
          { label: t("common.worker"), cell: (r) => d.names.user(r.worker_id) },
          { label: t("top.accepted"), cell: (r) => number(r.accepted), class: "num" },
          { label: t("top.pools"), cell: (r) => number(r.pools), class: "num" },
        ]} />
      )}
    </Section>
  );
}

const screen: Screen = {
  path: "/top-workers", access: ["manager", "admin"], title: "top.title", component: TopWorkers,
  nav: { group: "review", order: 3 },
};
export default screen;
