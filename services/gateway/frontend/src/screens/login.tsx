import { useState } from "preact/hooks";
import { post, sessionEndedStore, signIn, statusStore, type Me, type Role } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import { Alert, Button, Form, Section, TextField, useAction } from "../ui";

function Login() {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [run, busy, notice] = useAction();
  const status = useStore(statusStore);
  const ended = useStore(sessionEndedStore);

  const submit = () => run(async () => {
    const r = await post<{ token: string; user: Me }>("/auth/login", { login: login.trim(), password });
    await signIn(r.token);
  });
  const quick = (role: Role) => run(async () => {
    const r = await post<{ token: string }>("/dev/quick-login", { role });
    await signIn(r.token);
  });

  return (
    <>
      {ended && <Alert notice={{ kind: "info", text: t(ended === "session_idle" ? "login.ended_idle" : "login.ended") }} />}
      <Section title={t("login.form")}>
        <p>{t("login.explain")}</p>
        <Form onSubmit={submit} label={t("login.form")}>
          <TextField label={t("login.login")} value={login} onInput={setLogin} autoComplete="username" name="login" required />
          <TextField label={t("login.password")} value={password} onInput={setPassword} type="password"
            autoComplete="current-password" name="password" required />
          <Button type="submit" kind="primary" busy={busy}>{t("login.submit")}</Button>
        </Form>
        <Alert notice={notice} />
        <p class="muted">{t("login.mfa_note")}</p>
      </Section>
      <Section title={t("login.link_title")}>
        <p>{t("login.link_explain")}</p>
      </Section>
      {status?.quick_login && (
        <Section title={t("login.quick_title")}>
          <p>{t("login.quick_explain")}</p>
          <div class="row">
            {(["worker", "manager", "admin"] as Role[]).map((r) => (
              <Button key={r} onClick={() => void quick(r)} busy={busy}>{t(`role.${r}` as Key)}</Button>
            ))}
          </div>
        </Section>
      )}
    </>
  );
}

const screen: Screen = { path: "/login", access: "public", title: "login.title", component: Login };
export default screen;
