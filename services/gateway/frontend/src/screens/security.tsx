import { useState } from "preact/hooks";
import { loadMe, meStore, post, request, setToken } from "../api";
import { t } from "../i18n";
import { go, type Screen } from "../router";
import { useStore } from "../store";
import { Alert, Button, Facts, Form, Section, TextField, When, useAction } from "../ui";
import { PasswordForm } from "./password";

interface Setup { secret: string; otpauth_uri: string; qr_png_base64: string }

function Mfa() {
  const me = useStore(meStore);
  const [setup, setSetup] = useState<Setup | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [run, busy, notice] = useAction();
  const [stepCode, setStepCode] = useState("");
  const [runStep, stepBusy, stepNotice] = useAction();
  if (!me) return null;

  const start = () => run(async () => {
    setSetup(await post<Setup>("/auth/mfa/setup"));
  });
  const confirm = () => run(async () => {
    const r = await post<{ recovery_codes: string[] }>("/auth/mfa/confirm", { code: code.trim() });
    setCodes(r.recovery_codes);
    setSetup(null);
    setCode("");
    await loadMe();
    return t("mfa.enabled_now");
  });
  const stepUp = () => runStep(async () => {
    const body = /^\d{6}$/.test(stepCode.trim()) ? { code: stepCode.trim() } : { recovery_code: stepCode.trim() };
    await post("/auth/mfa/step-up", body);
    setStepCode("");
    await loadMe();
    return t("mfa.elevated_now");
  });

  return (
    <Section title={t("mfa.title")}>
      <p>{t("mfa.explain")}</p>
      <Facts items={[
        [t("mfa.state"), me.mfa_enabled ? t("mfa.on") : t("mfa.off")],
        ...(me.mfa_enabled ? [[t("mfa.elevated_until"), me.mfa_elevated && me.mfa_elevated_until
          ? <When at={me.mfa_elevated_until} /> : t("mfa.not_elevated")] as [string, preact.ComponentChildren]] : []),
      ]} />
      {!me.mfa_enabled && !setup && <Button kind="primary" onClick={() => void start()} busy={busy}>{t("mfa.setup")}</Button>}
      {setup && (
        <div class="mfa-setup">
          <p>{t("mfa.step1")}</p>
          <img class="qr" src={`data:image/png;base64,${setup.qr_png_base64}`} alt={t("mfa.qr_alt")} width={200} height={200} />
          <p>{t("mfa.secret")}: <code class="break" data-testid="mfa-secret">{setup.secret}</code></p>
          <details><summary>{t("mfa.uri")}</summary><code class="break">{setup.otpauth_uri}</code></details>
          <p>{t("mfa.step2")}</p>
          <Form onSubmit={() => void confirm()} label={t("mfa.confirm")}>
            <TextField label={t("mfa.code")} value={code} onInput={setCode} inputMode="numeric"
              autoComplete="one-time-code" maxLength={8} name="mfa-confirm-code" />
            <Button type="submit" kind="primary" busy={busy}>{t("mfa.confirm")}</Button>
          </Form>
        </div>
      )}
      <Alert notice={notice} />
      {codes && (
        <div class="recovery" role="region" aria-label={t("mfa.recovery")}>
          <h3>{t("mfa.recovery")}</h3>
          <p>{t("mfa.recovery_explain")}</p>
          <ul class="codes">{codes.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
          <Button onClick={() => setCodes(null)}>{t("mfa.recovery_saved")}</Button>
        </div>
      )}
      {me.mfa_enabled && (
        <>
          <h3>{t("mfa.step_up")}</h3>
          <p>{t("mfa.step_up_explain")}</p>
          <Form onSubmit={() => void stepUp()} label={t("mfa.step_up")}>
            <TextField label={t("mfa.code_or_recovery")} value={stepCode} onInput={setStepCode}
              autoComplete="one-time-code" maxLength={32} name="mfa-step-code" />
            <Button type="submit" kind="primary" busy={stepBusy}>{t("mfa.confirm")}</Button>
          </Form>
          <Alert notice={stepNotice} />
        </>
      )}
    </Section>
  );
}

/** Everything the platform holds on me, saved as one JSON file. */
function MyData() {
  const me = useStore(meStore);
  const [run, busy, notice] = useAction();
  const askErasure = () => run(async () => {
    await post("/me/erasure", {});
    return t("my_data.erase_asked");
  });
  const download = () => run(async () => {
    const r = await request("GET", "/me/data");
    const blob = await r.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `my-data-${new Date().toISOString().slice(0, 10)}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  return (
    <Section title={t("my_data.title")}>
      <p>{t("my_data.explain")}</p>
      <div class="row">
        <Button onClick={() => void download()} busy={busy}>{t("my_data.download")}</Button>
        {me?.role !== "admin" && <Button kind="danger" onClick={() => void askErasure()} busy={busy}>{t("my_data.erase")}</Button>}
      </div>
      <Alert notice={notice} />
    </Section>
  );
}

function Security() {
  const me = useStore(meStore);
  const [run, busy, notice] = useAction();
  const logoutAll = () => run(async () => {
    await post("/auth/logout-all");
    setToken(null);
    go("/login");
  });
  return (
    <>
      <Section title={t("password.title")}><PasswordForm forced={false} /></Section>
      {me?.role === "admin" && <Mfa />}
      <Section title={t("security.sessions")}>
        <p>{t("security.sessions_explain")}</p>
        {me?.session_expires_at && <p>{t("security.session_until")}: <When at={me.session_expires_at} /></p>}
        <Button kind="danger" onClick={() => void logoutAll()} busy={busy}>{t("security.logout_all")}</Button>
        <Alert notice={notice} />
      </Section>
      <MyData />
    </>
  );
}

const screen: Screen = {
  path: "/security", access: "any", title: "security.title", component: Security,
  nav: { group: "help", order: 0 },
};
export default screen;
