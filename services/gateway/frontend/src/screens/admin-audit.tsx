import { useState } from "preact/hooks";
import { get } from "../api";
import { t, has, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { LoadState, Pager, Section, Table, TextField, When, useLoad } from "../ui";

interface Item { id: number; at: string; kind: string; actor_user_id: string | null; target: string | null; address: string | null; details: Record<string, unknown> }
const PAGE = 50;

function Audit() {
  const [kind, setKind] = useState("");
  const [offset, setOffset] = useState(0);
  const names = useLoad(loadNames);
  const loaded = useLoad(() => get<{ items: Item[]; total: number }>(
    `/admin/audit?limit=${PAGE}&offset=${offset}${kind.trim() ? `&kind=${encodeURIComponent(kind.trim())}` : ""}`), [kind, offset]);
  const n = names.data;
  const d = loaded.data;
  return (
    <Section title={d ? t("audit.count", { n: d.total }) : undefined}>
      <TextField label={t("audit.kind_filter")} value={kind} onInput={(v) => { setKind(v); setOffset(0); }} name="audit_kind"
        hint={t("audit.kind_hint")} />
      <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
      {d && d.items.length > 0 && (
        <Table rows={d.items} rowKey={(i) => String(i.id)} columns={[
          { label: t("common.when"), cell: (i) => <When at={i.at} /> },
          { label: t("audit.kind"), cell: (i) => has(`audit.kind.${i.kind}`) ? t(`audit.kind.${i.kind}` as Key) : i.kind },
          { label: t("audit.actor"), cell: (i) => n ? n.user(i.actor_user_id) : "…" },
          { label: t("audit.target"), cell: (i) => n && i.target ? n.user(i.target) : i.target ?? "—" },
          { label: t("audit.address"), cell: (i) => i.address ?? "—" },
          { label: t("audit.details"), cell: (i) => Object.keys(i.details).length
            ? <ul class="plain kv">{Object.entries(i.details).map(([k, v]) => <li key={k}><span class="muted">{k}:</span> {typeof v === "object" ? String(JSON.stringify(v)) : String(v)}</li>)}</ul>
            : "—" },
        ]} />
      )}
      {d && <Pager onNewer={offset === 0 ? null : () => setOffset(Math.max(0, offset - PAGE))}
        onOlder={offset + PAGE >= d.total ? null : () => setOffset(offset + PAGE)} />}
    </Section>
  );
}

const screen: Screen = {
  path: "/admin/audit", access: ["admin"], title: "audit.title", component: Audit,
  nav: { group: "owner", order: 10 },
};
export default screen;
