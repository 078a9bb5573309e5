// The sandbox: staff try a sandbox project's pools as a worker would (take, see the task,
// submit with proof and comment); managers review the tries as usual. Nothing is paid or
// counted, and workers never see these pools.
import { useState } from "preact/hooks";
import { get, post } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import type { Assignment, Page, PoolView, TakeResult } from "../types";
import { Alert, Badge, Button, LoadState, SandboxMark, Section, Table, When, useAction, useLoad } from "../ui";
import { Work } from "./task";

function Sandbox() {
  const pools = useLoad(() => get<Page<PoolView>>("/pools?status=open&limit=500"));
  const active = useLoad(() => get<{ items: TakeResult[] }>("/sandbox/active"), [], ["assignments"]);
  const mine = useLoad(() => get<Page<Assignment>>("/sandbox/assignments?limit=20"), [], ["assignments", "decisions"]);
  const [current, setCurrent] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [run, busy, notice] = useAction();
  const sandboxPools = (pools.data?.items ?? []).filter((p) => p.sandbox);
  const items = active.data?.items ?? [];
  const work = items.find((a) => a.assignment_id === current) ?? items[0];
  const poolName = new Map(sandboxPools.map((p) => [p.pool_id, p.name]));
  const take = (poolId: string) => run(async () => {
    const a = await post<TakeResult>(`/sandbox/pools/${poolId}/take`);
    setCurrent(a.assignment_id);
    setDone(false);
    await Promise.all([active.reload(), mine.reload()]);
  });
  return (
    <>
      <p class="lead">{t("sandbox.explain")}</p>
      <Section title={t("sandbox.pools")}>
        <LoadState loaded={pools} empty={!!pools.data && sandboxPools.length === 0} />
        {sandboxPools.length > 0 && (
          <Table rows={sandboxPools} rowKey={(p) => p.pool_id} columns={[
            { label: t("common.pool"), cell: (p) => <>{p.name} <SandboxMark /></> },
            { label: t("common.actions"), cell: (p) => (
              <Button kind="primary" busy={busy} name={`try-${p.pool_id}`} onClick={() => void take(p.pool_id)}>
                {t("sandbox.try")}
              </Button>
            ) },
          ]} />
        )}
        <Alert notice={notice} />
      </Section>
      {done && <p class="alert alert-success" role="status">{t("sandbox.submitted")}</p>}
      {work && <Work a={work} key={work.assignment_id} base="/sandbox"
        onGone={() => { setDone(true); setCurrent(null); void active.reload(); void mine.reload(); }} />}
      <Section title={t("sandbox.mine")}>
        <LoadState loaded={mine} empty={!!mine.data && mine.data.items.length === 0} />
        {mine.data && mine.data.items.length > 0 && (
          <Table rows={mine.data.items} rowKey={(a) => a.assignment_id} columns={[
            { label: t("common.pool"), cell: (a) => poolName.get(a.pool_id) ?? a.pool_id.slice(0, 8) },
            { label: t("common.status"), cell: (a) => <Badge value={a.status} text={t(`assignment.${a.status}` as Key)} /> },
            { label: t("common.when"), cell: (a) => <When at={a.taken_at} /> },
          ]} />
        )}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/sandbox", access: ["manager", "admin"], title: "sandbox.title", component: Sandbox,
  nav: { group: "setup", order: 3 },
};
export default screen;
