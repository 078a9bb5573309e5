import { meStore, type Role } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import { Section } from "../ui";

const STEPS: Record<Role, Key[]> = {
  worker: ["help.worker.1", "help.worker.2", "help.worker.3", "help.worker.4", "help.worker.5", "help.worker.6"],
  manager: ["help.manager.1", "help.manager.2", "help.manager.3", "help.manager.4"],
  admin: ["help.admin.1", "help.admin.2", "help.admin.3", "help.admin.4", "help.admin.5"],
};

export function LegalMinimum() {
  return (
    <Section title={t("legal.minimum")}>
      <p>{t("legal.minimum.1")}</p>
      <p>{t("legal.minimum.2")}</p>
    </Section>
  );
}

function Help() {
  const me = useStore(meStore);
  const roles: Role[] = me ? [me.role, ...(["worker", "manager", "admin"] as Role[]).filter((r) => r !== me.role)]
                           : ["worker", "manager", "admin"];
  return (
    <>
      <p class="lead">{t("help.model")}</p>
      {roles.map((r) => (
        <Section key={r} title={t(`help.title.${r}` as Key)}>
          <ol class="steps">
            {STEPS[r].map((k) => <li key={k}>{t(k)}</li>)}
          </ol>
        </Section>
      ))}
      <LegalMinimum />
    </>
  );
}

const screen: Screen = {
  path: "/help", access: "public", title: "help.title", component: Help,
  nav: { group: "help", order: 1 },
};
export default screen;
