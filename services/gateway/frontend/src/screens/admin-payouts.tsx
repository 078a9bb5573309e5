import { useState } from "preact/hooks";
import { get, post } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { destinationText } from "./balance";
import type { Page, Payout } from "../types";
import { Alert, Badge, Button, LoadState, Money, Section, SelectField, Table, When, useAction, useLoad, useStepUp } from "../ui";

function AdminPayouts() {
  const [status, setStatus] = useState<"pending" | "approved" | "rejected" | "">("pending");
  const names = useLoad(loadNames);
  const payouts = useLoad(() => get<Page<Payout>>(`/admin/payouts?limit=200${status ? `&status=${status}` : ""}`), [status], ["payouts"]);
  const [run, busy, notice] = useAction();
  const mfa = useStepUp();
  const [comment, setComment] = useState<Record<string, string>>({});
  const decide = (p: Payout, what: "approve" | "reject") => run(mfa.withMfa(async () => {
    await post(`/admin/payouts/${p.payout_id}/${what}`, { comment: comment[p.payout_id]?.trim() || null });
    await payouts.reload();
    return t(what === "approve" ? "payouts.approved_now" : "payouts.rejected_now");
  }));
  const n = names.data;
  return (
    <>
      <p class="lead">{t("payouts.explain")}</p>
      <SelectField label={t("common.status")} value={status} onChange={setStatus}
        options={[["pending", t("payout.pending")], ["approved", t("payout.approved")], ["rejected", t("payout.rejected")], ["", t("common.all")]]} />
      {mfa.form}
      <Alert notice={notice} />
      <Section>
        <LoadState loaded={payouts} empty={!!payouts.data && payouts.data.items.length === 0} />
        {payouts.data && payouts.data.items.length > 0 && (
          <Table rows={payouts.data.items} rowKey={(p) => p.payout_id} columns={[
            { label: t("common.when"), cell: (p) => <When at={p.requested_at} /> },
            { label: t("common.worker"), cell: (p) => n ? n.user(p.worker_id) : "…" },
            { label: t("ledger.amount"), cell: (p) => <Money minor={p.amount_minor} currency={p.currency} />, class: "num" },
            { label: t("balance.destination"), cell: (p) => <span class="pre">{destinationText(p)}</span> },
            { label: t("payouts.details"), cell: (p) => <span class="pre">{p.comment}</span> },
            { label: t("common.status"), cell: (p) => <Badge value={p.status} text={t(`payout.${p.status}` as Key)} /> },
            { label: t("common.actions"), cell: (p) => p.status === "pending" ? (
              <div class="stack">
                <label class="sr-only" for={`c-${p.payout_id}`}>{t("payouts.comment")}</label>
                <input id={`c-${p.payout_id}`} placeholder={t("payouts.comment")} value={comment[p.payout_id] ?? ""}
                  onInput={(e) => setComment({ ...comment, [p.payout_id]: (e.target as HTMLInputElement).value })} />
                <div class="row">
                  <Button kind="primary" busy={busy} onClick={() => void decide(p, "approve")}>{t("payouts.approve")}</Button>
                  <Button kind="danger" busy={busy} onClick={() => void decide(p, "reject")}>{t("payouts.reject")}</Button>
                </div>
              </div>
            ) : p.decision_comment || "—" },
          ]} />
        )}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/admin/payouts", access: ["admin"], title: "payouts.title", component: AdminPayouts,
  nav: { group: "owner", order: 3 },
};
export default screen;
