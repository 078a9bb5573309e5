import { useState } from "preact/hooks";
import { get, meStore, post } from "../api";
import { shortId } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { useStore } from "../store";
import { Alert, Button, CheckField, LoadState, Section, Table, When, useAction, useLoad } from "../ui";

interface Restriction {
  restriction_id: string; rule_id: string; worker_id: string; scope: "pool" | "project" | "all";
  pool_id: string | null; project_id: string | null; private_comment: string; applied_at: string;
  until: string | null; lifted_at: string | null; source?: "rule" | "manual"; applied_by?: string | null;
  rule_version?: number | null;
}

function Restrictions() {
  const [activeOnly, setActiveOnly] = useState(true);
  const names = useLoad(loadNames);
  const loaded = useLoad(() => get<{ items: Restriction[]; total: number }>(`/restrictions?limit=200&active_only=${activeOnly}`),
    [activeOnly], ["restrictions"]);
  const admin = useStore(meStore)?.role === "admin";
  const [run, busy, notice] = useAction();
  const lift = (r: Restriction) => run(async () => {
    await post(`/admin/restrictions/${r.restriction_id}/lift`);
    await loaded.reload();
    return t("restrictions.lifted_now");
  });
  const n = names.data;
  const d = loaded.data;
  return (
    <Section title={d ? t("restrictions.count", { n: d.total }) : undefined}>
      <p>{t("restrictions.explain")}</p>
      <CheckField label={t("restrictions.active_only")} checked={activeOnly} onChange={setActiveOnly} />
      <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
      {d && d.items.length > 0 && n && (
        <Table rows={d.items} rowKey={(r) => r.restriction_id} columns={[
          { label: t("common.worker"), cell: (r) => n.user(r.worker_id) },
          { label: t("restrictions.where"), cell: (r) => r.scope === "pool" ? `${t("restrictions.scope.pool")}: ${n.pool(r.pool_id)}`
            : t(`restrictions.scope.${r.scope}` as Key) },
          { label: t("appeals.cause"), cell: (r) => r.source === "manual" ? `${t("appeals.cause.manual")}: ${n.user(r.applied_by)}`
            : `${shortId(r.rule_id)} v${r.rule_version ?? 1}` },
          { label: t("restrictions.comment"), cell: (r) => r.private_comment || "—" },
          { label: t("restrictions.applied"), cell: (r) => <When at={r.applied_at} /> },
          { label: t("restrictions.until"), cell: (r) => r.lifted_at ? <>{t("restrictions.lifted")} <When at={r.lifted_at} /></>
            : r.until ? <When at={r.until} /> : t("restrictions.permanent") },
          ...(admin ? [{ label: t("common.actions"), cell: (r: Restriction) => r.lifted_at ? "—" : (
            <Button busy={busy} onClick={() => void lift(r)}>{t("restrictions.lift")}</Button>) }] : []),
        ]} />
      )}
      <Alert notice={notice} />
      {!admin && <p class="muted">{t("restrictions.lift_by_owner")}</p>}
    </Section>
  );
}

const screen: Screen = {
  path: "/restrictions", access: ["manager", "admin"], title: "restrictions.title", component: Restrictions,
  nav: { group: "review", order: 6 },
};
export default screen;
