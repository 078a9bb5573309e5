import { useState } from "preact/hooks";
import { api, get } from "../api";
import { moneyInput, parseMoney } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import type { Page } from "../types";
import { Alert, Button, Form, LoadState, Money, Section, Table, TextField, When, useAction, useLoad } from "../ui";

interface ShareView { pool_id: string | null; share: string; share_bps: number; source: string; updated_at?: string | null; updated_by?: string | null }
interface Change { audit_id: number; pool_id: string | null; old_share: string | null; new_share: string; changed_by: string; changed_at: string }

function ShareForm({ label, current, path, onDone }: { label: string; current: string; path: string; onDone: () => void }) {
  const [value, setValue] = useState(current);
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    await api("PUT", path, { body: { share: value.trim().replace(",", ".") } });
    onDone();
    return t("share.saved");
  });
  return (
    <Form onSubmit={() => void submit()} label={label}>
      <div class="row">
        <TextField label={label} value={value} onInput={setValue} inputMode="decimal" name={`share-${path}`} hint={t("share.hint")} />
        <Button type="submit" kind="primary" busy={busy}>{t("common.save")}</Button>
      </div>
      <Alert notice={notice} />
    </Form>
  );
}

interface Floor { currency: string; floor_minor_per_hour: number; updated_by: string; updated_at: string }

/** The owner's fair-pay floor per currency: pools estimated below it do not open. */
function FairPayFloors() {
  const floors = useLoad(() => get<{ items: Floor[] }>("/admin/fair-pay/floors"));
  const [currency, setCurrency] = useState("RUB");
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [run, busy, notice] = useAction();
  const cur = currency.trim().toUpperCase();
  const save = (minor: number | null, which: string) => run(async () => {
    await api("PUT", `/admin/fair-pay/floors/${which}`, { body: { floor_minor_per_hour: minor } });
    void floors.reload();
    return minor === null ? t("fair_pay.floor_off_done", { currency: which }) : t("fair_pay.floor_saved");
  });
  const submit = () => {
    const minor = parseMoney(amount, cur);
    if (minor === null || minor <= 0) { setError(t("fair_pay.floor_invalid")); return; }
    setError(undefined);
    void save(minor, cur);
  };
  const items = floors.data?.items ?? [];
  const current = items.find((f) => f.currency === cur);
  return (
    <Section title={t("fair_pay.floor_title")}>
      <p>{t("fair_pay.floor_explain")}</p>
      <LoadState loaded={floors} />
      {floors.data && items.length === 0 && <p class="muted">{t("fair_pay.floor_none")}</p>}
      {items.length > 0 && (
        <Table rows={items} rowKey={(f) => f.currency} caption={t("fair_pay.floor_title")} columns={[
          { label: t("common.currency"), cell: (f) => f.currency },
          { label: t("fair_pay.floor"), cell: (f) => <><Money minor={f.floor_minor_per_hour} currency={f.currency} />{t("fair_pay.per_hour")}</> },
          { label: t("common.when"), cell: (f) => <When at={f.updated_at} /> },
          { label: "", cell: (f) => (
            <Button kind="link" busy={busy} name={`floor-off-${f.currency}`} onClick={() => void save(null, f.currency)}>{t("fair_pay.floor_off")}</Button>
          ) },
        ]} />
      )}
      <Form onSubmit={submit} label={t("fair_pay.floor_title")}>
        <div class="row">
          <TextField label={t("common.currency")} value={currency} onInput={(v) => setCurrency(v.toUpperCase())} name="floor_currency" maxLength={3} />
          <TextField label={t("fair_pay.floor")} value={amount} onInput={setAmount} inputMode="decimal" name="floor_amount"
            hint={t("fair_pay.floor_hint")} error={error}
            placeholder={current ? moneyInput(current.floor_minor_per_hour, cur) : ""} />
          <Button type="submit" kind="primary" busy={busy}>{t("common.save")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function Share() {
  const shares = useLoad(() => get<{ default: ShareView; pools: ShareView[] }>("/admin/worker-share"));
  const names = useLoad(loadNames);
  const audit = useLoad(() => get<Page<Change>>("/admin/worker-share/audit?limit=50"));
  const reload = () => { void shares.reload(); void audit.reload(); };
  const s = shares.data;
  const n = names.data;
  const own = new Map((s?.pools ?? []).map((p) => [p.pool_id, p]));
  return (
    <>
      <p class="lead">{t("share.explain")}</p>
      <LoadState loaded={shares} />
      {s && (
        <Section title={t("share.default")}>
          <ShareForm label={t("share.default")} current={s.default.share} path="/admin/worker-share/default" onDone={reload} />
        </Section>
      )}
      {s && n && (
        <Section title={t("share.pools")}>
          {n.pools.filter((p) => p.status !== "archived").map((p) => (
            <div key={p.pool_id} class="share-pool">
              <h3>{p.name}</h3>
              <p class="muted">{own.has(p.pool_id) ? t("share.own") : t("share.uses_default", { share: s.default.share })}</p>
              <ShareForm label={t("share.of_pool", { name: p.name })} current={own.get(p.pool_id)?.share ?? s.default.share}
                path={`/admin/pools/${p.pool_id}/worker-share`} onDone={reload} />
            </div>
          ))}
        </Section>
      )}
      <FairPayFloors />
      <Section title={t("share.audit")}>
        <LoadState loaded={audit} empty={!!audit.data && audit.data.items.length === 0} />
        {audit.data && audit.data.items.length > 0 && (
          <Table rows={audit.data.items} rowKey={(c) => String(c.audit_id)} columns={[
            { label: t("common.when"), cell: (c) => <When at={c.changed_at} /> },
            { label: t("common.pool"), cell: (c) => c.pool_id ? (n ? n.pool(c.pool_id) : "…") : t("share.default") },
            { label: t("share.old"), cell: (c) => c.old_share ?? "—" },
            { label: t("share.new"), cell: (c) => c.new_share },
            { label: t("share.by"), cell: (c) => n ? n.user(c.changed_by) : "…" },
          ]} />
        )}
      </Section>
    </>
  );
}

export const shareSource = (s: string) => t(`share.source.${s}` as Key);

const screen: Screen = {
  path: "/admin/share", access: ["admin"], title: "share.title", component: Share,
  nav: { group: "owner", order: 2 },
};
export default screen;
