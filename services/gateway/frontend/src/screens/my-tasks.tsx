import { get } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import type { Assignment, HistoryEntry, Page } from "../types";
import { Badge, LoadState, Money, Section, Table, When, useLoad } from "../ui";

function MyTasks() {
  const loaded = useLoad(async () => {
    const [assignments, history] = await Promise.all([
      get<Page<Assignment>>("/worker/assignments?limit=200"),
      get<Page<HistoryEntry>>("/worker/ledger?limit=500"),
    ]);
    const credit = new Map<string, HistoryEntry>();
    for (const e of history.items) {
      if (e.kind === "assignment" && e.assignment_id && e.account === "available") credit.set(e.assignment_id, e);
    }
    return { items: assignments.items, total: assignments.total, credit };
  }, [], ["credits", "decisions", "assignments"]);
  const d = loaded.data;
  return (
    <Section title={d ? t("mytasks.count", { n: d.total }) : undefined}>
      <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
      {d && d.items.length > 0 && (
        <Table rows={d.items} rowKey={(a) => a.assignment_id} columns={[
          { label: t("mytasks.task"), cell: (a) => <span title={a.task_id}>{Object.values(a.input).map(String).join(", ").slice(0, 80) || a.task_id}</span> },
          { label: t("common.status"), cell: (a) => <Badge value={a.status} text={t(`assignment.${a.status}` as Key)} /> },
          { label: t("mytasks.taken"), cell: (a) => <When at={a.taken_at} /> },
          { label: t("mytasks.earned"), cell: (a) => {
            const c = d.credit.get(a.assignment_id);
            return c ? <Money minor={c.amount_minor} currency={c.currency} /> : "—";
          } },
          { label: t("mytasks.review_comment"), cell: (a) => a.review_comment || "—" },
        ]} />
      )}
    </Section>
  );
}

const screen: Screen = {
  path: "/my-tasks", access: ["worker"], title: "nav.my_tasks", component: MyTasks,
  nav: { group: "work", order: 3 },
};
export default screen;
