// Staff control a worker by hand: block (everywhere), restrict in a project or suspend in
// a pool for a time or until lifted, with a private reason the worker never sees; set or
// remove a skill. Every change is audited.
import { useState } from "preact/hooks";
import { api, get, post } from "../api";
import { t, type Key } from "../i18n";
import type { Screen } from "../router";
import { loadNames } from "../staff";
import { Alert, Button, Form, LoadState, Section, SelectField, TextField, useAction, useLoad } from "../ui";

type Scope = "all" | "project" | "pool";
type Unit = "minutes" | "hours" | "days" | "permanent";
interface Project { project_id: string; name: string }

function RestrictForm({ workerId }: { workerId: string }) {
  const names = useLoad(loadNames);
  const projects = useLoad(() => get<{ items: Project[] }>("/projects?limit=500"));
  const [scope, setScope] = useState<Scope>("all");
  const [place, setPlace] = useState("");
  const [unit, setUnit] = useState<Unit>("days");
  const [duration, setDuration] = useState("1");
  const [reason, setReason] = useState("");
  const [run, busy, notice] = useAction();
  const places: [string, string][] = scope === "pool" ? (names.data?.pools ?? []).map((p) => [p.pool_id, p.name])
    : scope === "project" ? (projects.data?.items ?? []).map((p) => [p.project_id, p.name]) : [];
  const chosen = place || places[0]?.[0] || "";
  const submit = () => run(async () => {
    await post(`/admin/workers/${encodeURIComponent(workerId.trim())}/restrictions`, {
      scope, duration_unit: unit, private_comment: reason.trim(),
      ...(unit === "permanent" ? {} : { duration: Number(duration) }),
      ...(scope === "pool" ? { pool_id: chosen } : scope === "project" ? { project_id: chosen } : {}),
    });
    setReason("");
    return t("control.restricted");
  });
  return (
    <Section title={t("control.restrict")}>
      <Form onSubmit={() => void submit()} label={t("control.restrict")}>
        <div class="row">
          <SelectField label={t("control.scope")} value={scope} name="scope" onChange={(v) => { setScope(v); setPlace(""); }}
            options={(["all", "project", "pool"] as Scope[]).map((s) => [s, t(`control.scope.${s}` as Key)])} />
          {scope !== "all" && <SelectField label={t(scope === "pool" ? "appeals.pool" : "control.project")} value={chosen}
            name="place" onChange={setPlace} options={places} />}
        </div>
        <div class="row">
          <SelectField label={t("control.unit")} value={unit} name="unit" onChange={setUnit}
            options={(["minutes", "hours", "days", "permanent"] as Unit[]).map((u) => [u, t(`control.unit.${u}` as Key)])} />
          {unit !== "permanent" && <TextField label={t("control.duration")} value={duration} onInput={setDuration} inputMode="numeric" name="duration" />}
        </div>
        <TextField label={t("control.reason")} value={reason} onInput={setReason} multiline rows={2} maxLength={2000}
          hint={t("control.reason_hint")} name="reason" />
        <Button type="submit" kind="danger" busy={busy} disabled={!workerId.trim() || !reason.trim()}>{t("control.restrict_now")}</Button>
      </Form>
      <Alert notice={notice} />
      <LoadState loaded={names} />
    </Section>
  );
}

function SkillForm({ workerId }: { workerId: string }) {
  const [skill, setSkill] = useState("");
  const [value, setValue] = useState("");
  const [run, busy, notice] = useAction();
  const path = () => `/admin/workers/${encodeURIComponent(workerId.trim())}/skills/${encodeURIComponent(skill.trim())}`;
  const set = () => run(async () => {
    await api("PUT", path(), { body: { value: Number(value) } });
    return t("control.skill_set", { skill: skill.trim(), value });
  });
  const remove = () => run(async () => {
    await api("DELETE", path());
    return t("control.skill_removed", { skill: skill.trim() });
  });
  const ready = !!workerId.trim() && !!skill.trim();
  return (
    <Section title={t("control.skills")}>
      <Form onSubmit={() => void set()} label={t("control.skills")}>
        <div class="row">
          <TextField label={t("control.skill")} value={skill} onInput={setSkill} maxLength={64} name="skill" />
          <TextField label={t("control.value")} value={value} onInput={setValue} inputMode="numeric" name="value" hint={t("control.value_hint")} />
        </div>
        <div class="row">
          <Button type="submit" kind="primary" busy={busy} disabled={!ready || !value.trim()}>{t("control.set_skill")}</Button>
          <Button busy={busy} disabled={!ready} onClick={() => void remove()}>{t("control.remove_skill")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function WorkerControl() {
  const [workerId, setWorkerId] = useState(new URLSearchParams(location.hash.split("?")[1] ?? "").get("worker") ?? "");
  return (
    <>
      <p class="lead">{t("control.explain")}</p>
      <TextField label={t("control.worker_id")} value={workerId} onInput={setWorkerId} maxLength={64} name="worker" />
      <RestrictForm workerId={workerId} />
      <SkillForm workerId={workerId} />
    </>
  );
}

const screen: Screen = {
  path: "/workers/control", access: ["manager", "admin"], title: "control.title", component: WorkerControl,
  nav: { group: "review", order: 8 },
};
export default screen;
