import { t } from "../i18n";
import { href, type Screen } from "../router";

function Forbidden() {
  return <p class="alert alert-info" role="status">{t("forbidden.text")} <a href={href("/")}>{t("forbidden.home")}</a></p>;
}

const screen: Screen = { path: "/forbidden", access: "any", title: "forbidden.title", component: Forbidden };
export default screen;
