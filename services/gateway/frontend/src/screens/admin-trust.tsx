import { useState } from "preact/hooks";
import { api, get } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { Alert, Button, Form, LoadState, Section, TextField, useAction, useLoad } from "../ui";

interface Limits { level: "new" | "verified" | "trusted"; max_active: number; min_pause_s: number; assignment_timeout_s: number | null }

function LevelForm({ limits, onDone }: { limits: Limits; onDone: () => void }) {
  const [maxActive, setMaxActive] = useState(String(limits.max_active));
  const [pause, setPause] = useState(String(limits.min_pause_s));
  const [timeout, setTimeout_] = useState(limits.assignment_timeout_s == null ? "" : String(limits.assignment_timeout_s));
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    await api("PUT", "/admin/trust-limits", { body: {
      level: limits.level, max_active: Number(maxActive), min_pause_s: Number(pause.replace(",", ".")),
      assignment_timeout_s: timeout.trim() ? Number(timeout) : null,
    } });
    onDone();
    return t("trust.saved");
  });
  return (
    <Section title={t(`trust.${limits.level}` as Key)}>
      <Form onSubmit={() => void submit()} label={t(`trust.${limits.level}` as Key)}>
        <div class="row">
          <TextField label={t("trust.max_active")} value={maxActive} onInput={setMaxActive} inputMode="numeric" name={`max-${limits.level}`} />
          <TextField label={t("trust.min_pause")} value={pause} onInput={setPause} inputMode="decimal" name={`pause-${limits.level}`} />
          <TextField label={t("trust.timeout")} value={timeout} onInput={setTimeout_} inputMode="numeric"
            name={`timeout-${limits.level}`} hint={t("trust.timeout_hint")} />
        </div>
        <Button type="submit" kind="primary" busy={busy}>{t("common.save")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function Trust() {
  const loaded = useLoad(() => get<{ levels: Limits[] }>("/admin/trust-limits"));
  return (
    <>
      <p class="lead">{t("trust.explain")}</p>
      <LoadState loaded={loaded} />
      {loaded.data?.levels.map((l) => <LevelForm key={`${l.level}-${l.max_active}-${l.min_pause_s}`} limits={l} onDone={() => void loaded.reload()} />)}
    </>
  );
}

const screen: Screen = {
  path: "/admin/trust", access: ["admin"], title: "trust.title", component: Trust,
  nav: { group: "owner", order: 4 },
};
export default screen;
