// Managers decide workers' appeals: uphold (the rejected work is paid, the restriction is
// lifted) or deny, with a reply the worker reads.
import { useState } from "preact/hooks";
import { get, post } from "../api";
import { shortId } from "../format";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { Alert, Button, Facts, LoadState, Section, SelectField, TextField, When, done, useAction, useLoad, type Notice } from "../ui";
import { AppealOutcome, type Appeal } from "./my-restrictions";

type Status = "pending" | "upheld" | "denied";

function Decide({ appeal, onDone }: { appeal: Appeal; onDone: (text: string) => void }) {
  const [reply, setReply] = useState("");
  const [run, busy, notice] = useAction();
  const decide = (outcome: "upheld" | "denied") => run(async () => {
    await post(`/admin/appeals/${appeal.appeal_id}/decision`, { outcome, reply: reply.trim() });
    onDone(t(`appeals.decided.${outcome}` as Key));  // the card leaves the list: the screen tells
  });
  return (
    <>
      <TextField label={t("appeals.reply")} value={reply} onInput={setReply} multiline rows={2} maxLength={2000}
        name={`reply-${appeal.appeal_id}`} hint={t("appeals.reply_hint")} />
      <div class="row">
        <Button kind="primary" busy={busy} disabled={!reply.trim()} onClick={() => void decide("upheld")}>{t("appeals.uphold")}</Button>
        <Button kind="danger" busy={busy} disabled={!reply.trim()} onClick={() => void decide("denied")}>{t("appeals.deny")}</Button>
      </div>
      <Alert notice={notice} />
    </>
  );
}

function Appeals() {
  const [status, setStatus] = useState<Status>("pending");
  const [notice, setNotice] = useState<Notice>(null);
  const names = useLoad(loadNames);
  const loaded = useLoad(() => get<{ items: Appeal[]; total: number }>(`/appeals?limit=200&status=${status}`), [status]);
  const n = names.data;
  const d = loaded.data;
  return (
    <>
      <p class="lead">{t("appeals.staff_explain")}</p>
      <SelectField label={t("appeals.show")} value={status} onChange={setStatus} name="status"
        options={(["pending", "upheld", "denied"] as Status[]).map((s) => [s, t(`appeals.status.${s}` as Key)])} />
      <Alert notice={notice} />
      <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
      {d && n && d.items.map((a) => (
        <Section key={a.appeal_id} title={t(`appeals.kind.${a.kind}` as Key)}>
          <div data-testid="appeal">
            <Facts items={[
              [t("common.worker"), n.user(a.worker_id)],
              [t("appeals.subject"), a.kind === "rejection" ? `${t("appeals.assignment")} ${shortId(a.subject_id)}`
                : shortId(a.subject_id)],
              [t("appeals.pool"), a.pool_id ? n.pool(a.pool_id) : t("restrictions.scope.all")],
              [t("appeals.message"), a.message],
              [t("appeals.filed_at"), <When at={a.filed_at} />],
            ]} />
            {a.status === "pending" ? <Decide appeal={a} onDone={(text) => { setNotice(done(text)); void loaded.reload(); }} /> : <AppealOutcome appeal={a} />}
          </div>
        </Section>
      ))}
    </>
  );
}

const screen: Screen = {
  path: "/appeals", access: ["manager", "admin"], title: "appeals.title", component: Appeals,
  nav: { group: "review", order: 7 },
};
export default screen;
