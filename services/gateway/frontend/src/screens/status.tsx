import { refreshStatus, statusStore } from "../api";
import { t } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import { Badge, Button, Facts, Section } from "../ui";

function Status() {
  const s = useStore(statusStore);
  return (
    <Section title={t("status.platform")} actions={<Button onClick={() => void refreshStatus()}>{t("common.refresh")}</Button>}>
      {s ? (
        <Facts items={[
          [t("status.state"), <Badge value={s.status === "ok" ? "ok" : "down"} text={s.status === "ok" ? t("status.ok") : t("status.down")} />],
          [t("status.mode"), s.read_only
            ? <Badge value="degraded" text={t("status.read_only")} />
            : <Badge value="ok" text={t("status.normal")} />],
          ...(s.read_only && s.read_only_reason ? [[t("common.reason"), s.read_only_reason] as [string, string]] : []),
          [t("status.version"), s.version],
        ]} />
      ) : <p class="alert alert-error" role="alert">{t("status.unreachable")}</p>}
    </Section>
  );
}

const screen: Screen = { path: "/status", access: "public", title: "status.title", component: Status };
export default screen;
