import { useState } from "preact/hooks";
import { api, get } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import type { Page } from "../types";
import { Alert, Badge, Button, LoadState, Section, SelectField, Table, When, useAction, useLoad } from "../ui";

type LeadStatus = "new" | "contacted" | "won" | "lost";
interface Lead {
  lead_id: string; name: string; contact: string; company: string; message: string;
  status: LeadStatus; notes: string; created_at: string; updated_at: string;
}
const STATUSES: LeadStatus[] = ["new", "contacted", "won", "lost"];
const TONE: Record<LeadStatus, string> = { new: "pending", contacted: "ACTIVE", won: "ok", lost: "archived" };

function LeadRow({ lead, onSaved }: { lead: Lead; onSaved: () => void }) {
  const [status, setStatus] = useState<LeadStatus>(lead.status);
  const [notes, setNotes] = useState(lead.notes);
  const [run, busy, notice] = useAction();
  const save = () => run(async () => {
    await api("PATCH", `/admin/leads/${lead.lead_id}`, { body: { status, notes } });
    onSaved();
    return t("leads.saved");
  });
  return (
    <div class="stack">
      <SelectField label={t("common.status")} value={status} onChange={setStatus}
        options={STATUSES.map((s) => [s, t(`lead.${s}` as Key)])} />
      <label class="sr-only" for={`n-${lead.lead_id}`}>{t("leads.notes")}</label>
      <textarea id={`n-${lead.lead_id}`} rows={2} value={notes} placeholder={t("leads.notes")} maxLength={10000}
        onInput={(e) => setNotes((e.target as HTMLTextAreaElement).value)} />
      <Button kind="primary" busy={busy} onClick={() => void save()}>{t("common.save")}</Button>
      <Alert notice={notice} />
    </div>
  );
}

function AdminLeads() {
  const [status, setStatus] = useState<LeadStatus | "">("");
  const leads = useLoad(() => get<Page<Lead>>(`/admin/leads?limit=200${status ? `&status=${status}` : ""}`), [status]);
  return (
    <>
      <p class="lead">{t("leads.admin_explain")}</p>
      <SelectField label={t("common.status")} value={status} onChange={setStatus}
        options={[["", t("common.all")], ...STATUSES.map((s) => [s, t(`lead.${s}` as Key)] as [LeadStatus, string])]} />
      <Section>
        <LoadState loaded={leads} empty={!!leads.data && leads.data.items.length === 0} />
        {leads.data && leads.data.items.length > 0 && (
          <Table rows={leads.data.items} rowKey={(l) => l.lead_id} columns={[
            { label: t("common.when"), cell: (l) => <When at={l.created_at} /> },
            { label: t("leads.name"), cell: (l) => <>{l.name}{l.company && <><br /><span class="muted">{l.company}</span></>}</> },
            { label: t("leads.contact"), cell: (l) => <span class="break">{l.contact}</span> },
            { label: t("leads.message"), cell: (l) => <span class="pre">{l.message}</span> },
            { label: t("common.status"), cell: (l) => <Badge value={TONE[l.status]} text={t(`lead.${l.status}` as Key)} /> },
            { label: t("common.actions"), cell: (l) => <LeadRow key={l.lead_id} lead={l} onSaved={() => void leads.reload()} /> },
          ]} />
        )}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/admin/leads", access: ["admin"], title: "leads.admin_title", component: AdminLeads,
  nav: { group: "owner", order: 6 },
};
export default screen;
