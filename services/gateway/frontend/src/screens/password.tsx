import { useState } from "preact/hooks";
import { meStore, post, signIn } from "../api";
import { fieldErrors } from "../errors";
import { t } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import { Alert, Button, Form, Section, TextField, useAction } from "../ui";

/** The password form: forced after the first login, or by choice from the security page. */
export function PasswordForm({ forced }: { forced: boolean }) {
  const [old, setOld] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice, setNotice] = useAction();

  const submit = () => {
    if (next !== again) {
      setErrors({ again: t("password.mismatch") });
      setNotice(null);
      return;
    }
    setErrors({});
    void run(async () => {
      try {
        const r = await post<{ token: string }>("/auth/password", { old_password: old, new_password: next });
        await signIn(r.token);
        setOld(""); setNext(""); setAgain("");
        return t("password.changed");
      } catch (e) {
        setErrors(fieldErrors(e));
        throw e;
      }
    });
  };
  return (
    <>
      <Form onSubmit={submit} label={t("password.title")}>
        <TextField label={t(forced ? "password.temporary" : "password.current")} value={old} onInput={setOld}
          type="password" autoComplete="current-password" name="old_password" error={errors.old_password} />
        <TextField label={t("password.new")} value={next} onInput={setNext} type="password"
          autoComplete="new-password" name="new_password" hint={t("password.rules")} error={errors.new_password} />
        <TextField label={t("password.again")} value={again} onInput={setAgain} type="password"
          autoComplete="new-password" name="new_password_again" error={errors.again} />
        <Button type="submit" kind="primary" busy={busy}>{t("password.submit")}</Button>
      </Form>
      <Alert notice={notice} />
    </>
  );
}

function Password() {
  const me = useStore(meStore);
  return (
    <Section title={me?.must_change_password ? t("password.forced_title") : t("password.title")}>
      {me?.must_change_password && <p>{t("password.forced_explain")}</p>}
      <PasswordForm forced={!!me?.must_change_password} />
    </Section>
  );
}

const screen: Screen = { path: "/password", access: "any", title: "password.title", component: Password };
export default screen;
