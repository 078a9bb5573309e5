import { useState } from "preact/hooks";
import { get, post, refreshStatus } from "../api";
import { t } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { Alert, Badge, Button, Facts, Form, LoadState, Section, TextField, When, useAction, useLoad, useStepUp } from "../ui";

interface State { enabled: boolean; reason: string; by_user_id: string | null; changed_at: string | null }

function Emergency() {
  const state = useLoad(() => get<State>("/admin/emergency"), [], ["emergency"]);
  const names = useLoad(loadNames);
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const [run, busy, notice] = useAction();
  const mfa = useStepUp();
  const s = state.data;
  const flip = () => run(mfa.withMfa(async () => {
    if (reason.trim().length < 3) {
      setError(t("emergency.reason_needed"));
      return;
    }
    setError("");
    const next = await post<State>("/admin/emergency", { enabled: !s!.enabled, reason: reason.trim() });
    setReason("");
    await state.reload();
    await refreshStatus();
    return t(next.enabled ? "emergency.on_now" : "emergency.off_now");
  }));
  return (
    <>
      <p class="lead">{t("emergency.explain")}</p>
      <LoadState loaded={state} />
      {s && (
        <Section title={t("emergency.state")}>
          <Facts items={[
            [t("emergency.mode"), s.enabled ? <Badge value="degraded" text={t("status.read_only")} /> : <Badge value="ok" text={t("status.normal")} />],
            [t("common.reason"), s.reason || "—"],
            [t("emergency.by"), names.data ? names.data.user(s.by_user_id) : "…"],
            [t("emergency.changed"), <When at={s.changed_at} />],
          ]} />
          <Form onSubmit={() => void flip()} label={t("emergency.state")}>
            <TextField label={t("common.reason")} value={reason} onInput={setReason} name="reason" error={error} maxLength={500}
              hint={t("emergency.reason_hint")} />
            <Button type="submit" kind={s.enabled ? "primary" : "danger"} busy={busy}>
              {s.enabled ? t("emergency.switch_off") : t("emergency.switch_on")}
            </Button>
          </Form>
          {mfa.form}
          <Alert notice={notice} />
        </Section>
      )}
    </>
  );
}

const screen: Screen = {
  path: "/admin/emergency", access: ["admin"], title: "emergency.title", component: Emergency,
  nav: { group: "owner", order: 9 },
};
export default screen;
