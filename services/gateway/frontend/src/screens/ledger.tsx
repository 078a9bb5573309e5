import { useState } from "preact/hooks";
import { get } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import type { HistoryEntry, Page } from "../types";
import { LoadState, Money, Pager, Section, Table, When, useLoad } from "../ui";

const PAGE = 50;

function Ledger() {
  const [offset, setOffset] = useState(0);
  const loaded = useLoad(() => get<Page<HistoryEntry>>(`/worker/ledger?limit=${PAGE}&offset=${offset}`), [offset], ["credits", "payouts"]);
  const d = loaded.data;
  return (
    <Section title={d ? t("ledger.count", { n: d.total }) : undefined}>
      <p>{t("ledger.explain")}</p>
      <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
      {d && d.items.length > 0 && (
        <Table rows={d.items} rowKey={(e) => String(e.entry_id)} columns={[
          { label: t("common.when"), cell: (e) => <When at={e.at} /> },
          { label: t("ledger.kind"), cell: (e) => t(`ledger.kind.${e.kind}` as Key) },
          { label: t("ledger.account"), cell: (e) => t(`ledger.account.${e.account}` as Key) },
          { label: t("ledger.amount"), cell: (e) => <Money minor={e.amount_minor} currency={e.currency} signed />, class: "num" },
        ]} />
      )}
      {d && <Pager onNewer={offset === 0 ? null : () => setOffset(Math.max(0, offset - PAGE))}
        onOlder={offset + PAGE >= d.total ? null : () => setOffset(offset + PAGE)} />}
    </Section>
  );
}

const screen: Screen = {
  path: "/ledger", access: ["worker"], title: "ledger.title", component: Ledger,
  nav: { group: "money", order: 2 },
};
export default screen;
