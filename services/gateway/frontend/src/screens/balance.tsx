import { useState } from "preact/hooks";
import { get, post } from "../api";
import { fieldErrors } from "../errors";
import { moneyInput, parseMoney } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import type { CurrencyBalance, Page, Payout } from "../types";
import {
  Alert, Badge, Button, Form, LoadState, Money, Section, SelectField, Table, TextField, When, useAction, useLoad,
} from "../ui";

const METHODS = ["card", "bank_account", "phone", "wallet"] as const;
type Method = (typeof METHODS)[number];

export function destinationText(p: Payout): string {
  if (!p.destination_method || !p.destination_details) return "—";
  return `${t(`balance.method.${p.destination_method}` as Key)}: ${p.destination_details}`;
}

function RequestPayout({ balances, onDone }: { balances: CurrencyBalance[]; onDone: () => void }) {
  const [currency, setCurrency] = useState(balances[0]?.currency ?? "RUB");
  const [amount, setAmount] = useState("");
  const [details, setDetails] = useState("");
  const [method, setMethod] = useState<Method>("card");
  const [destination, setDestination] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [run, busy, notice] = useAction();
  const available = balances.find((b) => b.currency === currency)?.available_minor ?? 0;
  const submit = () => run(async () => {
    const minor = parseMoney(amount, currency);
    const errs: Record<string, string> = {};
    if (minor === null || minor <= 0) errs.amount_minor = t("balance.amount_invalid");
    else if (minor > available) errs.amount_minor = t("balance.amount_too_much");
    if (!details.trim()) errs.comment = t("field.required");
    if (!/^[0-9A-Za-z+@._ -]{4,64}$/.test(destination.trim())) errs.destination_details = t("balance.destination_invalid");
    setErrors(errs);
    if (Object.keys(errs).length) return;
    try {
      // the same key on a retry returns the first request instead of holding the money twice
      await post("/worker/payouts", {
        amount_minor: minor, currency, comment: details.trim(),
        destination_method: method, destination_details: destination.trim(),
      }, { "Idempotency-Key": key });
    } catch (e) {
      setErrors(fieldErrors(e));
      throw e;
    }
    setKey(crypto.randomUUID());
    setAmount("");
    setDestination("");
    onDone();
    return t("balance.requested");
  });
  return (
    <Section title={t("balance.request")}>
      <Form onSubmit={() => void submit()} label={t("balance.request")}>
        {balances.length > 1 && (
          <SelectField label={t("common.currency")} value={currency} onChange={setCurrency}
            options={balances.map((b) => [b.currency, b.currency])} />
        )}
        <TextField label={t("balance.amount", { currency })} value={amount} onInput={setAmount} inputMode="decimal"
          name="amount" error={errors.amount_minor}
          hint={t("balance.available_hint", { amount: moneyInput(available, currency) })} />
        <SelectField label={t("balance.method")} value={method} onChange={setMethod}
          options={METHODS.map((m) => [m, t(`balance.method.${m}` as Key)])} />
        <TextField label={t("balance.destination")} value={destination} onInput={setDestination}
          name="destination" hint={t("balance.destination_hint")} error={errors.destination_details} maxLength={64} />
        <TextField label={t("balance.details")} value={details} onInput={setDetails} multiline rows={3}
          name="details" hint={t("balance.details_hint")} error={errors.comment} maxLength={2000} />
        <Button type="submit" kind="primary" busy={busy}>{t("balance.request_submit")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function Balance() {
  const balance = useLoad(() => get<{ balances: CurrencyBalance[] }>("/worker/balance"), [], ["credits", "payouts"]);
  const payouts = useLoad(() => get<Page<Payout>>("/worker/payouts?limit=100"), [], ["payouts"]);
  const b = balance.data?.balances ?? [];
  return (
    <>
      <p class="lead">{t("balance.explain")}</p>
      <Section title={t("balance.title")}>
        <LoadState loaded={balance} empty={!!balance.data && b.length === 0} />
        {b.map((c) => (
          <dl class="facts money-facts" key={c.currency}>
            <div><dt>{t("balance.available")}</dt><dd data-testid={`available-${c.currency}`}><Money minor={c.available_minor} currency={c.currency} /></dd></div>
            <div><dt>{t("balance.on_hold")}</dt><dd><Money minor={c.on_hold_minor} currency={c.currency} /></dd></div>
            <div><dt>{t("balance.paid")}</dt><dd><Money minor={c.paid_minor} currency={c.currency} /></dd></div>
          </dl>
        ))}
      </Section>
      {b.length > 0 && <RequestPayout balances={b} onDone={() => { void balance.reload(); void payouts.reload(); }} />}
      <Section title={t("balance.history")}>
        <LoadState loaded={payouts} empty={!!payouts.data && payouts.data.items.length === 0} />
        {payouts.data && payouts.data.items.length > 0 && (
          <Table rows={payouts.data.items} rowKey={(p) => p.payout_id} columns={[
            { label: t("common.when"), cell: (p) => <When at={p.requested_at} /> },
            { label: t("ledger.amount"), cell: (p) => <Money minor={p.amount_minor} currency={p.currency} />, class: "num" },
            { label: t("balance.destination"), cell: (p) => destinationText(p) },
            { label: t("common.status"), cell: (p) => <Badge value={p.status} text={t(`payout.${p.status}` as Key)} /> },
            { label: t("balance.decided"), cell: (p) => <When at={p.decided_at} /> },
            { label: t("balance.decision_comment"), cell: (p) => p.decision_comment || "—" },
          ]} />
        )}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/balance", access: ["worker"], title: "balance.title", component: Balance,
  nav: { group: "money", order: 1 },
};
export default screen;
