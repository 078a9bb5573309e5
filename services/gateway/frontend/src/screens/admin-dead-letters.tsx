import { useState } from "preact/hooks";
import { get, post } from "../api";
import { t } from "../i18n";
import type { Screen } from "../router";
import { Alert, Button, LoadState, Pager, Section, Table, When, useAction, useLoad } from "../ui";

interface Letter {
  seq: number; service: string | null; consumer: string; subject: string; reason: string;
  error_type: string; error_message: string; deliveries: number | null;
  dead_lettered_at: string | null; size: number;
}
interface Letters { items: Letter[]; total: number; next_after_seq: number | null }
const PAGE = 50;

function DeadLetters() {
  // where each page starts: the first is after 0, the next after the last one shown
  const [starts, setStarts] = useState<number[]>([0]);
  const after = starts[starts.length - 1];
  const loaded = useLoad(() => get<Letters>(`/admin/dead-letters?limit=${PAGE}&after_seq=${after}`), [after]);
  const [run, busy, notice] = useAction();
  const [reason, setReason] = useState<Record<number, string>>({});
  const [shown, setShown] = useState<{ seq: number; text: string } | null>(null);
  const show = (l: Letter) => run(async () => {
    const d = await get<{ payload: string; payload_json: unknown; headers: Record<string, string> }>(`/admin/dead-letters/${l.seq}`);
    const body = d.payload_json !== null ? JSON.stringify(d.payload_json, null, 2) : d.payload;
    setShown({ seq: l.seq, text: `${Object.entries(d.headers).map(([k, v]) => `${k}: ${v}`).join("\n")}\n\n${body}` });
    return "";
  });
  const act = (l: Letter, what: "replay" | "discard") => run(async () => {
    const r = await post<{ outcome?: string }>(`/admin/dead-letters/${l.seq}/${what}`,
      what === "discard" ? { reason: reason[l.seq]?.trim() || t("dlq.discard_default_reason") } : undefined);
    if (shown?.seq === l.seq) setShown(null);
    await loaded.reload();
    if (what === "discard") return t("dlq.discarded_now", { seq: l.seq });
    return t(r.outcome === "duplicate" ? "dlq.replayed_duplicate" : "dlq.replayed_now", { seq: l.seq });
  });
  const d = loaded.data;
  return (
    <>
      <p class="lead">{t("dlq.explain")}</p>
      <Alert notice={notice} />
      <Section title={d ? t("dlq.count", { n: d.total }) : undefined}>
        <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
        {d && d.items.length > 0 && (
          <Table rows={d.items} rowKey={(l) => String(l.seq)} columns={[
            { label: t("dlq.seq"), cell: (l) => String(l.seq), class: "num" },
            { label: t("common.when"), cell: (l) => <When at={l.dead_lettered_at} /> },
            { label: t("dlq.consumer"), cell: (l) => <><div>{l.consumer}</div><div class="muted">{l.subject}</div></> },
            { label: t("dlq.reason"), cell: (l) => <><div>{l.reason}{l.deliveries ? ` · ${t("dlq.deliveries", { n: l.deliveries })}` : ""}</div>
              <div class="muted pre">{[l.error_type, l.error_message].filter(Boolean).join(": ")}</div></> },
            { label: t("common.actions"), cell: (l) => (
              <div class="stack">
                <label class="sr-only" for={`r-${l.seq}`}>{t("dlq.discard_reason")}</label>
                <input id={`r-${l.seq}`} placeholder={t("dlq.discard_reason")} value={reason[l.seq] ?? ""} maxLength={500}
                  onInput={(e) => setReason({ ...reason, [l.seq]: (e.target as HTMLInputElement).value })} />
                <div class="row">
                  <Button busy={busy} onClick={() => void show(l)}>{t("dlq.show")}</Button>
                  <Button kind="primary" busy={busy} disabled={!l.service} onClick={() => void act(l, "replay")}>{t("dlq.replay")}</Button>
                  <Button kind="danger" busy={busy} onClick={() => void act(l, "discard")}>{t("dlq.discard")}</Button>
                </div>
              </div>
            ) },
          ]} />
        )}
        {shown && (
          <div data-testid="dead-letter-payload">
            <h3>{t("dlq.payload", { seq: shown.seq })}</h3>
            <pre class="pre">{shown.text}</pre>
          </div>
        )}
        {d && <Pager onNewer={starts.length === 1 ? null : () => setStarts(starts.slice(0, -1))}
          onOlder={d.next_after_seq === null ? null : () => setStarts([...starts, d.next_after_seq ?? after])} />}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/admin/dead-letters", access: ["admin"], title: "dlq.title", component: DeadLetters,
  nav: { group: "owner", order: 12 },
};
export default screen;
