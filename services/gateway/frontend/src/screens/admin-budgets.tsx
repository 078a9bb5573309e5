import { useState } from "preact/hooks";
import { api, get, post } from "../api";
import { fieldErrors } from "../errors";
import { parseMoney } from "../format";
import { t } from "../i18n";
import type { Screen } from "../router";
import type { Page } from "../types";
import { Alert, Button, Form, LoadState, Money, Section, SelectField, Table, TextField, When, useAction, useLoad } from "../ui";

interface Requester {
  requester_id: string; name: string; currency: string; available_minor: number; reserved_minor: number;
  created_at: string;
}
interface PoolRow { pool_id: string; name: string; status: string; currency: string }
interface PoolBudget {
  pool_id: string; funded_by: "requester" | "platform"; requester_id?: string | null; currency?: string | null;
  reserved_minor: number; spent_minor: number; released_minor: number; remaining_minor: number;
  worker_credits_minor: number; platform_credits_minor: number;
}

const CURRENCIES = ["RUB", "USD", "EUR"] as const;

function NewRequester({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [currency, setCurrency] = useState<string>("RUB");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    if (!name.trim()) { setErrors({ name: t("field.required") }); return; }
    try {
      await post("/admin/requesters", { name: name.trim(), currency });
    } catch (e) { setErrors(fieldErrors(e)); throw e; }
    setName(""); setErrors({}); onDone();
    return t("budgets.created");
  });
  return (
    <Section title={t("budgets.new")}>
      <Form onSubmit={() => void submit()} label={t("budgets.new")}>
        <TextField label={t("budgets.name")} value={name} onInput={setName} error={errors.name} maxLength={200} />
        <SelectField label={t("common.currency")} value={currency} onChange={setCurrency}
          options={CURRENCIES.map((c) => [c, c])} />
        <Button type="submit" kind="primary" busy={busy}>{t("budgets.create")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function TopUp({ requesters, onDone }: { requesters: Requester[]; onDone: () => void }) {
  const [rid, setRid] = useState(requesters[0]?.requester_id ?? "");
  const [amount, setAmount] = useState("");
  const [comment, setComment] = useState("");
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice] = useAction();
  const chosen = requesters.find((r) => r.requester_id === rid) ?? requesters[0];
  const submit = () => run(async () => {
    if (!chosen) return;
    const minor = parseMoney(amount, chosen.currency);
    const errs: Record<string, string> = {};
    if (minor === null || minor <= 0) errs.amount_minor = t("balance.amount_invalid");
    if (!comment.trim()) errs.comment = t("field.required");
    setErrors(errs);
    if (Object.keys(errs).length) return;
    try {
      await post(`/admin/requesters/${chosen.requester_id}/top-ups`, { amount_minor: minor, comment: comment.trim() },
        { "Idempotency-Key": key });
    } catch (e) { setErrors(fieldErrors(e)); throw e; }
    setKey(crypto.randomUUID()); setAmount(""); setComment(""); onDone();
    return t("budgets.topped_up");
  });
  if (!chosen) return null;
  return (
    <Section title={t("budgets.top_up")}>
      <p class="muted">{t("budgets.top_up_explain")}</p>
      <Form onSubmit={() => void submit()} label={t("budgets.top_up")}>
        <SelectField label={t("budgets.requester")} value={chosen.requester_id} onChange={setRid}
          options={requesters.map((r) => [r.requester_id, `${r.name} (${r.currency})`])} />
        <TextField label={t("balance.amount", { currency: chosen.currency })} value={amount} onInput={setAmount}
          inputMode="decimal" error={errors.amount_minor} />
        <TextField label={t("budgets.source")} value={comment} onInput={setComment} error={errors.comment} maxLength={500} />
        <Button type="submit" kind="primary" busy={busy}>{t("budgets.top_up_submit")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function PoolFunding({ requesters }: { requesters: Requester[] }) {
  const pools = useLoad(() => get<Page<PoolRow>>("/admin/pools?limit=200"), []);
  const [poolId, setPoolId] = useState("");
  const [rid, setRid] = useState(requesters[0]?.requester_id ?? "");
  const pid = poolId || pools.data?.items[0]?.pool_id || "";
  const budget = useLoad(() => pid ? get<PoolBudget>(`/admin/pools/${pid}/budget`) : Promise.resolve(null), [pid]);
  const [run, busy, notice] = useAction();
  const link = () => run(async () => {
    await api("PUT", `/admin/pools/${pid}/budget`, { body: { requester_id: rid || requesters[0]?.requester_id } });
    await budget.reload();
    return t("budgets.linked");
  });
  const b = budget.data;
  return (
    <Section title={t("budgets.pools")}>
      <p class="muted">{t("budgets.pools_explain")}</p>
      <LoadState loaded={pools} empty={!!pools.data && pools.data.items.length === 0} />
      {pools.data && pools.data.items.length > 0 && (
        <>
          <SelectField label={t("budgets.pool")} value={pid} onChange={setPoolId}
            options={pools.data.items.map((p) => [p.pool_id, `${p.name} (${p.currency})`])} />
          {b && b.funded_by === "platform" && requesters.length > 0 && (
            <div class="row">
              <SelectField label={t("budgets.fund_from")} value={rid || requesters[0].requester_id} onChange={setRid}
                options={requesters.map((r) => [r.requester_id, `${r.name} (${r.currency})`])} />
              <Button kind="primary" busy={busy} onClick={() => void link()}>{t("budgets.link")}</Button>
            </div>
          )}
          {b && b.funded_by === "platform" && <p>{t("budgets.platform_funded")}</p>}
          {b && b.funded_by === "requester" && b.currency && (
            <dl class="facts money-facts">
              <div><dt>{t("budgets.reserved")}</dt><dd><Money minor={b.reserved_minor} currency={b.currency} /></dd></div>
              <div><dt>{t("budgets.spent")}</dt><dd><Money minor={b.spent_minor} currency={b.currency} /></dd></div>
              <div><dt>{t("budgets.released")}</dt><dd><Money minor={b.released_minor} currency={b.currency} /></dd></div>
              <div><dt>{t("budgets.remaining")}</dt><dd><Money minor={b.remaining_minor} currency={b.currency} /></dd></div>
              <div><dt>{t("budgets.to_workers")}</dt><dd><Money minor={b.worker_credits_minor} currency={b.currency} /></dd></div>
              <div><dt>{t("budgets.to_platform")}</dt><dd><Money minor={b.platform_credits_minor} currency={b.currency} /></dd></div>
            </dl>
          )}
          <Alert notice={notice} />
        </>
      )}
    </Section>
  );
}

function AdminBudgets() {
  const requesters = useLoad(() => get<Page<Requester>>("/admin/requesters?limit=200"), []);
  const items = requesters.data?.items ?? [];
  return (
    <>
      <p class="lead">{t("budgets.explain")}</p>
      <Section title={t("budgets.requesters")}>
        <LoadState loaded={requesters} empty={!!requesters.data && items.length === 0} />
        {items.length > 0 && (
          <Table rows={items} rowKey={(r) => r.requester_id} columns={[
            { label: t("budgets.name"), cell: (r) => r.name },
            { label: t("budgets.available"), cell: (r) => <Money minor={r.available_minor} currency={r.currency} />, class: "num" },
            { label: t("budgets.reserved"), cell: (r) => <Money minor={r.reserved_minor} currency={r.currency} />, class: "num" },
            { label: t("common.when"), cell: (r) => <When at={r.created_at} /> },
          ]} />
        )}
      </Section>
      {items.length > 0 && <TopUp requesters={items} onDone={() => void requesters.reload()} />}
      <NewRequester onDone={() => void requesters.reload()} />
      <PoolFunding requesters={items} />
    </>
  );
}

const screen: Screen = {
  path: "/admin/budgets", access: ["admin"], title: "budgets.title", component: AdminBudgets,
  nav: { group: "owner", order: 3 },
};
export default screen;
