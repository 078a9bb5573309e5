import { get } from "../api";
import { dateTime, number } from "../format";
import { t } from "../i18n";
import type { Screen } from "../router";
import { Alert, Badge, Button, Facts, LoadState, Section, Table, useAction, useLoad } from "../ui";
import { useState } from "preact/hooks";

interface Report {
  status: "ok" | "degraded"; checked_at: string; problems: string[]; outbox_backlog_total: number;
  services: { service: string; status: string; latency_ms: number | null; error: string | null;
    diagnostics: { database: string; bus: string; outbox_backlog: number; outbox_lag_seconds: number } | null }[];
  bus: { status: string; connected: boolean; dlq_depth: number | null; error: string | null; streams: { name: string; messages: number; bytes: number; consumers: number }[] };
  consumer_lag: { service: string; consumer: string; stream: string; pending: number; ack_pending: number; redelivered: number }[];
}
interface Consistency { ok: boolean; transfers_checked: number; entries_checked: number; accounts_checked: number; findings: { kind: string; subject: string; message: string }[] }

const health = (s: string) => <Badge value={s} text={t(s === "ok" ? "doctor.ok" : s === "down" ? "doctor.down" : "doctor.degraded")} />;

function Doctor() {
  const loaded = useLoad(() => get<Report>("/admin/diagnostics"));
  const [consistency, setConsistency] = useState<Consistency | null>(null);
  const [run, busy, notice] = useAction();
  const r = loaded.data;
  const check = () => run(async () => { setConsistency(await get<Consistency>("/admin/ledger/consistency")); });
  return (
    <>
      <p class="lead">{t("doctor.explain")}</p>
      <Button kind="primary" onClick={() => void loaded.reload()} busy={loaded.loading}>{t("doctor.run")}</Button>
      <LoadState loaded={loaded} />
      {r && (
        <>
          <Section title={t("doctor.summary")}>
            <Facts items={[
              [t("doctor.overall"), health(r.status)],
              [t("doctor.checked"), dateTime(r.checked_at)],
              [t("doctor.backlog"), number(r.outbox_backlog_total)],
              [t("doctor.dlq"), r.bus.dlq_depth === null ? "—" : number(r.bus.dlq_depth)],
            ]} />
            {r.problems.length > 0
              ? <ul class="plain">{r.problems.map((p) => <li key={p} class="alert alert-error">{p}</li>)}</ul>
              : <p class="alert alert-success" role="status">{t("doctor.no_problems")}</p>}
          </Section>
          <Section title={t("doctor.services")}>
            <Table rows={r.services} rowKey={(s) => s.service} columns={[
              { label: t("doctor.service"), cell: (s) => s.service },
              { label: t("common.status"), cell: (s) => health(s.status) },
              { label: t("doctor.database"), cell: (s) => s.diagnostics?.database ?? "—" },
              { label: t("doctor.bus"), cell: (s) => s.diagnostics?.bus ?? "—" },
              { label: t("doctor.backlog"), cell: (s) => s.diagnostics ? number(s.diagnostics.outbox_backlog) : "—", class: "num" },
              { label: t("doctor.latency"), cell: (s) => s.latency_ms === null ? "—" : `${number(s.latency_ms, 1)} ms`, class: "num" },
              { label: t("doctor.error"), cell: (s) => s.error ?? "—" },
            ]} />
          </Section>
          <Section title={t("doctor.streams")}>
            <Table rows={r.bus.streams} rowKey={(s) => s.name} columns={[
              { label: t("doctor.stream"), cell: (s) => s.name },
              { label: t("doctor.messages"), cell: (s) => number(s.messages), class: "num" },
              { label: t("doctor.consumers"), cell: (s) => number(s.consumers), class: "num" },
            ]} />
          </Section>
          {r.consumer_lag.length > 0 && (
            <Section title={t("doctor.lag")}>
              <Table rows={r.consumer_lag} rowKey={(c) => `${c.service}-${c.consumer}`} columns={[
                { label: t("doctor.service"), cell: (c) => c.service },
                { label: t("doctor.consumer"), cell: (c) => <span class="break">{c.consumer}</span> },
                { label: t("doctor.pending"), cell: (c) => number(c.pending), class: "num" },
                { label: t("doctor.redelivered"), cell: (c) => number(c.redelivered), class: "num" },
              ]} />
            </Section>
          )}
        </>
      )}
      <Section title={t("doctor.ledger")}>
        <p>{t("doctor.ledger_explain")}</p>
        <Button onClick={() => void check()} busy={busy}>{t("doctor.ledger_run")}</Button>
        <Alert notice={notice} />
        {consistency && (consistency.ok
          ? <p class="alert alert-success" role="status">{t("doctor.ledger_ok", { n: consistency.transfers_checked })}</p>
          : <ul class="plain">{consistency.findings.map((f) => <li key={f.subject} class="alert alert-error">{f.message}</li>)}</ul>)}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/admin/doctor", access: ["admin"], title: "doctor.title", component: Doctor,
  nav: { group: "owner", order: 11 },
};
export default screen;
