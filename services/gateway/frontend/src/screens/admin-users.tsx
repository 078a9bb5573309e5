import { useState } from "preact/hooks";
import { get, meStore, post } from "../api";
import { fieldErrors } from "../errors";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import type { Page, UserRow } from "../types";
import { Alert, Badge, Button, Facts, Form, LoadState, Section, SelectField, TextField, When, useAction, useLoad, useStepUp } from "../ui";

type Role = UserRow["role"];
type Level = "new" | "verified" | "trusted";

function NewUser({ onDone }: { onDone: () => void }) {
  const [login, setLogin] = useState("");
  const [role, setRole] = useState<Role>("worker");
  const [created, setCreated] = useState<{ login: string; temporary_password: string } | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    try {
      setCreated(await post("/admin/users", { login: login.trim().toLowerCase(), role }));
    } catch (e) {
      setErrors(fieldErrors(e));
      throw e;
    }
    setErrors({});
    setLogin("");
    onDone();
  });
  return (
    <Section title={t("users.new")}>
      <Form onSubmit={() => void submit()} label={t("users.new")}>
        <div class="row">
          <TextField label={t("login.login")} value={login} onInput={setLogin} name="new_login" error={errors.login}
            hint={t("users.login_hint")} maxLength={64} />
          <SelectField label={t("users.role")} value={role} onChange={setRole}
            options={(["worker", "manager", "admin"] as Role[]).map((r) => [r, t(`role.${r}` as Key)])} />
        </div>
        <Button type="submit" kind="primary" busy={busy}>{t("users.create")}</Button>
      </Form>
      <Alert notice={notice} />
      {created && (
        <div class="alert alert-success" role="status">
          <p>{t("users.created", { login: created.login })}</p>
          <p>{t("users.temporary_password")}: <code class="break" data-testid="temporary-password">{created.temporary_password}</code></p>
          <p class="muted">{t("users.temporary_explain")}</p>
        </div>
      )}
    </Section>
  );
}

function UserCard({ u, onChange }: { u: UserRow; onChange: () => void }) {
  const me = useStore(meStore);
  const [link, setLink] = useState<{ url: string; expires_at: string } | null>(null);
  const [level, setLevel] = useState<Level>("new");
  const [profile, setProfile] = useState<{ trust_level: Level; skills: Record<string, number>; active_assignments: number } | null>(null);
  const [run, busy, notice] = useAction();
  const toggle = () => run(async () => {
    await post(`/admin/users/${u.user_id}/${u.disabled ? "enable" : "disable"}`);
    onChange();
    return t(u.disabled ? "users.enabled_now" : "users.disabled_now");
  });
  const mfa = useStepUp();
  const [confirmErase, setConfirmErase] = useState(false);
  const erase = () => run(mfa.withMfa(async () => {
    await post(`/admin/users/${u.user_id}/erase`);
    setConfirmErase(false);
    onChange();
    return t("users.erased_now");
  }));
  const makeLink = () => run(async () => {
    setLink(await post(`/admin/users/${u.user_id}/login-link`));
  });
  const loadProfile = () => run(async () => {
    const p = await get<{ trust_level: Level; skills: Record<string, number>; active_assignments: number }>(`/admin/workers/${u.user_id}`);
    setProfile(p);
    setLevel(p.trust_level);
  });
  const saveLevel = () => run(async () => {
    await post(`/admin/users/${u.user_id}/trust-level`, { level });
    await loadProfile();
    return t("users.level_saved");
  });
  return (
    <Section title={u.login} actions={<>
      <Badge value={u.disabled ? "rejected" : "ok"} text={u.disabled ? t("users.disabled") : t("users.active")} />
    </>}>
      <Facts items={[
        [t("users.role"), t(`role.${u.role}` as Key)],
        [t("mfa.state"), u.mfa_enabled ? t("mfa.on") : t("mfa.off")],
        [t("users.password"), u.must_change_password ? t("users.password_temporary") : t("users.password_own")],
        [t("common.created"), <When at={u.created_at} />],
      ]} />
      <div class="row">
        {u.user_id !== me?.user_id && (
          <Button kind={u.disabled ? "secondary" : "danger"} busy={busy} onClick={() => void toggle()}>
            {u.disabled ? t("users.enable") : t("users.disable")}
          </Button>
        )}
        {!u.disabled && <Button busy={busy} onClick={() => void makeLink()}>{t("users.login_link")}</Button>}
        {u.role === "worker" && !profile && <Button busy={busy} onClick={() => void loadProfile()}>{t("users.trust_level")}</Button>}
        {u.role !== "admin" && !u.login.startsWith("erased-") && !confirmErase &&
          <Button kind="danger" busy={busy} onClick={() => setConfirmErase(true)}>{t("users.erase")}</Button>}
      </div>
      {confirmErase && (
        <div class="alert alert-info" role="group" aria-label={t("users.erase")}>
          <p>{t("users.erase_explain")}</p>
          <div class="row">
            <Button kind="danger" busy={busy} onClick={() => void erase()}>{t("users.erase_confirm")}</Button>
            <Button busy={busy} onClick={() => setConfirmErase(false)}>{t("common.cancel")}</Button>
          </div>
        </div>
      )}
      {mfa.form}
      {link && (
        <div class="alert alert-success" role="status">
          <p>{t("users.link_explain")}</p>
          <p><code class="break" data-testid="login-link">{link.url}</code></p>
          <p>{t("users.link_expires")}: <When at={link.expires_at} /></p>
          <Button onClick={() => void navigator.clipboard?.writeText(link.url)}>{t("common.copy")}</Button>
        </div>
      )}
      {profile && (
        <Form onSubmit={() => void saveLevel()} label={t("users.trust_level")}>
          <p>{t("users.active_now", { n: profile.active_assignments })}
            {Object.keys(profile.skills).length > 0 && <> · {t("users.skills")}: {Object.entries(profile.skills).map(([k, v]) => `${k}=${v}`).join(", ")}</>}</p>
          <div class="row">
            <SelectField label={t("users.trust_level")} value={level} onChange={setLevel}
              options={(["new", "verified", "trusted"] as Level[]).map((l) => [l, t(`trust.${l}` as Key)])} />
            <Button type="submit" kind="primary" busy={busy}>{t("common.save")}</Button>
          </div>
        </Form>
      )}
      <Alert notice={notice} />
    </Section>
  );
}

function Users() {
  const users = useLoad(() => get<Page<UserRow>>("/admin/users?limit=500"));
  const [q, setQ] = useState("");
  const items = (users.data?.items ?? []).filter((u) => !q || u.login.includes(q.toLowerCase()));
  return (
    <>
      <NewUser onDone={() => void users.reload()} />
      <TextField label={t("users.search")} value={q} onInput={setQ} name="user_search" />
      <LoadState loaded={users} empty={!!users.data && items.length === 0} />
      {items.map((u) => <UserCard key={`${u.user_id}-${u.disabled}`} u={u} onChange={() => void users.reload()} />)}
    </>
  );
}

const screen: Screen = {
  path: "/admin/users", access: ["admin"], title: "users.title", component: Users,
  nav: { group: "owner", order: 5 },
};
export default screen;
