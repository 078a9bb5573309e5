import { t } from "../i18n";
import type { Screen } from "../router";
import { Section } from "../ui";
import { Tickets } from "./support";

function Reports() {
  return (
    <Section title={t("reports.title")}>
      <p>{t("reports.explain")}</p>
      <Tickets kind="task_report:" filters />
    </Section>
  );
}

const screen: Screen = {
  path: "/reports", access: ["manager", "admin"], title: "reports.title", component: Reports,
  nav: { group: "review", order: 4 },
};
export default screen;
