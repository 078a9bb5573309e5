import { useState } from "preact/hooks";
import { get, meStore, post } from "../api";
import { t } from "../i18n";
import { go, href, type Screen } from "../router";
import { loadNames } from "../staff";
import { useStore } from "../store";
import type { Page, Submission } from "../types";
import {
  Alert, Button, CheckField, LoadState, SandboxMark, Section, SelectField, Table, When, useAction, useLoad,
} from "../ui";

function Review() {
  const me = useStore(meStore);
  const [pool, setPool] = useState("");
  const [onlyFree, setOnlyFree] = useState(false);
  const names = useLoad(loadNames);
  const pending = useLoad(() => get<Page<Submission>>(
    `/review/pending?limit=100${pool ? `&pool_id=${encodeURIComponent(pool)}` : ""}${onlyFree ? "&only_free=true" : ""}`),
    [pool, onlyFree], ["review_queue"]);
  const [run, busy, notice] = useAction();
  const n = names.data;
  const next = () => run(async () => {
    const s = await post<Submission>("/review/next", pool ? { pool_id: pool } : {});
    go(`/review/${s.assignment_id}`);
  });
  return (
    <>
      <p class="lead">{t("review.explain")}</p>
      <Section title={pending.data ? t("review.pending_count", { n: pending.data.total }) : t("review.pending")}
        actions={<Button kind="primary" onClick={() => void next()} busy={busy}>{t("review.next")}</Button>}>
        <div class="filters">
          <SelectField label={t("common.pool")} value={pool} onChange={setPool}
            options={[["", t("common.all_pools")], ...(n?.pools ?? []).map((p) => [p.pool_id, p.name] as [string, string])]} />
          <CheckField label={t("review.only_free")} checked={onlyFree} onChange={setOnlyFree} />
        </div>
        <Alert notice={notice} />
        <LoadState loaded={pending} empty={!!pending.data && pending.data.items.length === 0} />
        {pending.data && pending.data.items.length > 0 && n && (
          <Table rows={pending.data.items} rowKey={(s) => s.assignment_id} columns={[
            { label: t("review.submitted"), cell: (s) => <a href={href(`/review/${s.assignment_id}`)}><When at={s.submitted_at} /></a> },
            { label: t("common.pool"), cell: (s) => <>{n.pool(s.pool_id)}{s.sandbox && <SandboxMark />}</> },
            { label: t("common.worker"), cell: (s) => n.user(s.worker_id) },
            { label: t("review.lock"), cell: (s) => s.lock_holder && s.lock_until && new Date(s.lock_until) > new Date()
              ? <>{s.lock_holder === me?.user_id ? t("review.locked_by_me") : t("review.locked_by", { who: n.user(s.lock_holder) })}{" "}
                  {t("review.lock_until")} <When at={s.lock_until} /></>
              : t("review.free") },
            { label: t("common.open"), cell: (s) => <a href={href(`/review/${s.assignment_id}`)}>{t("review.open")}</a> },
          ]} />
        )}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/review", access: ["manager", "admin"], title: "review.title", component: Review,
  nav: { group: "review", order: 1 },
};
export default screen;
