import { t } from "../i18n";
import type { Screen } from "../router";
import { Section } from "../ui";
import { LegalMinimum } from "./help";

function Legal() {
  return (
    <>
      <LegalMinimum />
      <Section title={t("legal.documents")}>
        <p>{t("legal.documents.explain")}</p>
        <p class="alert alert-info" role="status">{t("legal.documents.not_yet")}</p>
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/legal", access: "any", title: "legal.title", component: Legal,
  nav: { group: "help", order: 2 },
};
export default screen;
