import { useState } from "preact/hooks";
import { get, post } from "../api";
import { fieldErrors } from "../errors";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import type { Page } from "../types";
import { Alert, Badge, Button, CheckField, Form, LoadState, Section, SelectField, Table, TextField, When, useAction, useLoad } from "../ui";

const KINDS = ["task.accepted", "task.rejected", "pool.closed", "payout.changed", "result.ready"] as const;
type Kind = (typeof KINDS)[number];

interface Webhook { subscription_id: string; url: string; kinds: Kind[]; description: string; active: boolean; created_at: string }
interface Attempt { attempt: number; at: string; status_code?: number | null; error?: string | null; duration_ms: number }
interface Delivery {
  delivery_id: string; event_id: string; kind: Kind; status: "pending" | "delivered" | "failed"; attempts: number;
  next_attempt_at?: string | null; created_at: string; delivered_at?: string | null; log: Attempt[];
}

function NewWebhook({ onDone }: { onDone: () => void }) {
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [kinds, setKinds] = useState<Kind[]>(["task.accepted"]);
  const [secret, setSecret] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    const errs: Record<string, string> = {};
    if (!url.trim()) errs.url = t("field.required");
    if (!kinds.length) errs.kinds = t("webhooks.kinds_required");
    setErrors(errs);
    if (Object.keys(errs).length) return;
    try {
      const made = await post<{ secret: string }>("/admin/webhooks", { url: url.trim(), kinds, description: description.trim() });
      setSecret(made.secret);
    } catch (e) { setErrors(fieldErrors(e)); throw e; }
    setUrl(""); setDescription(""); onDone();
    return t("webhooks.created");
  });
  const toggle = (k: Kind, on: boolean) => setKinds(on ? [...kinds, k] : kinds.filter((x) => x !== k));
  return (
    <Section title={t("webhooks.new")}>
      <Form onSubmit={() => void submit()} label={t("webhooks.new")}>
        <TextField label={t("webhooks.url")} value={url} onInput={setUrl} type="url" error={errors.url}
          hint={t("webhooks.url_hint")} maxLength={2000} />
        <fieldset class="field">
          <legend>{t("webhooks.kinds")}</legend>
          {KINDS.map((k) => <CheckField key={k} label={t(`webhooks.kind.${k}` as Key)} checked={kinds.includes(k)}
            onChange={(on) => toggle(k, on)} />)}
          {errors.kinds && <p class="field-error">{errors.kinds}</p>}
        </fieldset>
        <TextField label={t("webhooks.description")} value={description} onInput={setDescription} maxLength={200} />
        <Button type="submit" kind="primary" busy={busy}>{t("webhooks.create")}</Button>
      </Form>
      <Alert notice={notice} />
      {secret && (
        <div class="alert alert-info" role="status">
          <p>{t("webhooks.secret_once")}</p>
          <code class="secret" data-testid="webhook-secret">{secret}</code>
          <p class="muted">{t("webhooks.signature_hint")}</p>
        </div>
      )}
    </Section>
  );
}

function Deliveries({ hook }: { hook: Webhook }) {
  const [status, setStatus] = useState<"" | "pending" | "delivered" | "failed">("");
  const list = useLoad(() => get<Page<Delivery>>(`/admin/webhooks/${hook.subscription_id}/deliveries?limit=100${status ? `&status=${status}` : ""}`),
    [hook.subscription_id, status]);
  const [run, busy, notice] = useAction();
  const again = (d: Delivery) => run(async () => {
    await post(`/admin/webhook-deliveries/${d.delivery_id}/redeliver`);
    await list.reload();
    return t("webhooks.redelivered");
  });
  return (
    <Section title={t("webhooks.deliveries", { url: hook.url })}>
      <SelectField label={t("common.status")} value={status} onChange={setStatus}
        options={[["", t("common.all")], ["pending", t("webhooks.status.pending")], ["delivered", t("webhooks.status.delivered")], ["failed", t("webhooks.status.failed")]]} />
      <Alert notice={notice} />
      <LoadState loaded={list} empty={!!list.data && list.data.items.length === 0} />
      {list.data && list.data.items.length > 0 && (
        <Table rows={list.data.items} rowKey={(d) => d.delivery_id} columns={[
          { label: t("common.when"), cell: (d) => <When at={d.created_at} /> },
          { label: t("webhooks.kind"), cell: (d) => t(`webhooks.kind.${d.kind}` as Key) },
          { label: t("common.status"), cell: (d) => <Badge value={d.status} text={t(`webhooks.status.${d.status}` as Key)} /> },
          { label: t("webhooks.attempts"), cell: (d) => (
            <ol class="compact">
              {d.log.map((a) => <li key={a.attempt}><When at={a.at} /> — {a.status_code ?? a.error ?? "—"}</li>)}
            </ol>
          ) },
          { label: t("webhooks.next"), cell: (d) => <When at={d.next_attempt_at} /> },
          { label: t("common.actions"), cell: (d) => <Button busy={busy} onClick={() => void again(d)}>{t("webhooks.redeliver")}</Button> },
        ]} />
      )}
    </Section>
  );
}

function AdminWebhooks() {
  const hooks = useLoad(() => get<Page<Webhook>>("/admin/webhooks?limit=200"), []);
  const [chosen, setChosen] = useState<string | null>(null);
  const [run, busy, notice] = useAction();
  const items = hooks.data?.items ?? [];
  const hook = items.find((h) => h.subscription_id === chosen) ?? null;
  const disable = (h: Webhook) => run(async () => {
    await post(`/admin/webhooks/${h.subscription_id}/disable`);
    await hooks.reload();
    return t("webhooks.disabled_now");
  });
  return (
    <>
      <p class="lead">{t("webhooks.explain")}</p>
      <Section title={t("webhooks.list")}>
        <Alert notice={notice} />
        <LoadState loaded={hooks} empty={!!hooks.data && items.length === 0} />
        {items.length > 0 && (
          <Table rows={items} rowKey={(h) => h.subscription_id} columns={[
            { label: t("webhooks.url"), cell: (h) => <span class="pre">{h.url}</span> },
            { label: t("webhooks.kinds"), cell: (h) => h.kinds.map((k) => t(`webhooks.kind.${k}` as Key)).join(", ") },
            { label: t("common.status"), cell: (h) => h.active ? t("webhooks.active") : t("webhooks.inactive") },
            { label: t("common.actions"), cell: (h) => (
              <div class="row">
                <Button onClick={() => setChosen(h.subscription_id)}>{t("webhooks.show_deliveries")}</Button>
                {h.active && <Button kind="danger" busy={busy} onClick={() => void disable(h)}>{t("webhooks.disable")}</Button>}
              </div>
            ) },
          ]} />
        )}
      </Section>
      {hook && <Deliveries hook={hook} />}
      <NewWebhook onDone={() => void hooks.reload()} />
    </>
  );
}

const screen: Screen = {
  path: "/admin/webhooks", access: ["admin"], title: "webhooks.title", component: AdminWebhooks,
  nav: { group: "owner", order: 7 },
};
export default screen;
