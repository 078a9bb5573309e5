import { useState } from "preact/hooks";
import { ApiError, api, get, post, request } from "../api";
import { fieldErrors, fieldText } from "../errors";
import { number, parseMoney, percent } from "../format";
import { t, type Key } from "../i18n";
import { href, type Screen } from "../router";
import type { Page, PoolView, Project } from "../types";
import {
  Alert, Badge, Button, Form, LoadState, Money, Pager, SandboxMark, Section, SelectField, Table, TextField, useAction, useLoad,
} from "../ui";

interface UploadResult { created: number; control_tasks: number; task_ids: string[]; errors: { line: number; error: string }[] }

/** A row's errors ("url: required; n: must be an integer") in the viewer's language. */
function rowError(text: string): string {
  return text.split("; ").map((part) => {
    const m = /^([\w:.-]+): (.*)$/.exec(part);
    return m ? `${m[1]}: ${fieldText(m[2])}` : fieldText(part);
  }).join("; ");
}

function NewPool({ projects, onDone }: { projects: Project[]; onDone: () => void }) {
  const [project, setProject] = useState(projects[0]?.project_id ?? "");
  const [name, setName] = useState("");
  const [currency, setCurrency] = useState("RUB");
  const [price, setPrice] = useState("");
  const [overlap, setOverlap] = useState("1");
  const [timeout, setTimeout_] = useState("600");
  const [captcha, setCaptcha] = useState<"none" | "low" | "high">("none");
  const [expected, setExpected] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    const minor = parseMoney(price, currency);
    if (minor === null) {
      setErrors({ price_minor: t("pools_admin.price_invalid") });
      return;
    }
    try {
      const p = await post<PoolView>("/admin/pools", {
        project_id: project, name: name.trim(), price_minor: minor, currency,
        overlap: Number(overlap) || 1, assignment_timeout_s: Number(timeout) || 600, captcha_frequency: captcha,
        expected_seconds_per_task: expected.trim() ? Number(expected) : null,
      });
      setName(""); setPrice(""); setErrors({});
      onDone();
      return t("pools_admin.created", { name: p.name });
    } catch (e) {
      setErrors(fieldErrors(e));
      throw e;
    }
  });
  if (!projects.length) return <Section title={t("pools_admin.new")}><p>{t("pools_admin.need_project")}</p></Section>;
  return (
    <Section title={t("pools_admin.new")}>
      <Form onSubmit={() => void submit()} label={t("pools_admin.new")}>
        <SelectField label={t("pools_admin.project")} value={project} onChange={setProject}
          options={projects.map((p) => [p.project_id, p.name])} />
        <TextField label={t("pools_admin.name")} value={name} onInput={setName} name="pool_name" error={errors.name} maxLength={200} />
        <div class="row">
          <TextField label={t("pools_admin.price")} value={price} onInput={setPrice} inputMode="decimal" name="price"
            hint={t("pools_admin.price_hint")} error={errors.price_minor} />
          <TextField label={t("common.currency")} value={currency} onInput={(v) => setCurrency(v.toUpperCase())} name="currency"
            maxLength={3} error={errors.currency} />
        </div>
        <div class="row">
          <TextField label={t("pools_admin.overlap")} value={overlap} onInput={setOverlap} inputMode="numeric" name="overlap" error={errors.overlap} />
          <TextField label={t("pools_admin.timeout")} value={timeout} onInput={setTimeout_} inputMode="numeric" name="timeout"
            error={errors.assignment_timeout_s} />
          <SelectField label={t("pools_admin.captcha")} value={captcha} onChange={setCaptcha}
            options={[["none", t("captcha.none")], ["low", t("captcha.low")], ["high", t("captcha.high")]]} />
          <TextField label={t("fair_pay.expected")} value={expected} onInput={setExpected} inputMode="numeric" name="expected_seconds"
            hint={t("fair_pay.expected_hint")} error={errors.expected_seconds_per_task} />
        </div>
        <Button type="submit" kind="primary" busy={busy}>{t("pools_admin.create")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function Upload({ pool, onDone }: { pool: PoolView; onDone: () => void }) {
  const [text, setText] = useState("");
  const [result, setResult] = useState<UploadResult | null>(null);
  const [run, busy, notice] = useAction();
  const lines = text.split(/\r?\n/);
  const isJson = /^\s*[[{]/.test(text);
  const readFile = async (e: Event) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) setText(await f.text());
  };
  const submit = () => run(async () => {
    const r = await api<UploadResult>("POST", `/admin/pools/${pool.pool_id}/tasks`, {
      raw: { text, type: isJson ? "application/json" : "text/tab-separated-values" },
    });
    setResult(r);
    onDone();
    return t("upload.created", { n: r.created });
  });
  return (
    <div class="card-inner">
      <h3>{t("upload.title")}</h3>
      <p>{t("upload.explain")}</p>
      <div class="field">
        <label for={`file-${pool.pool_id}`}>{t("upload.file")}</label>
        <input id={`file-${pool.pool_id}`} type="file" accept=".tsv,.txt,.json,text/tab-separated-values,application/json" onChange={(e) => void readFile(e)} />
      </div>
      <TextField label={t("upload.paste")} value={text} onInput={setText} multiline rows={6} name={`upload-${pool.pool_id}`} />
      <Button kind="primary" onClick={() => void submit()} busy={busy} disabled={!text.trim()}>{t("upload.submit")}</Button>
      <Alert notice={notice} />
      {result && result.errors.length > 0 && (
        <div class="upload-errors" role="region" aria-label={t("upload.errors")}>
          <p class="alert alert-error" role="alert">{t("upload.errors_count", { n: result.errors.length })}</p>
          <ol class="plain">
            {result.errors.map((er) => (
              <li key={er.line} class="row-error">
                <strong>{er.line > 0 ? t("upload.line", { n: er.line }) : t("upload.whole")}</strong>{" "}
                {!isJson && er.line > 0 && lines[er.line - 1] !== undefined && <code class="break">{lines[er.line - 1]}</code>}{" "}
                <span class="field-error">{rowError(er.error)}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </div>
  );
}

type Method = "majority_vote" | "wawa" | "zero_based_skill" | "gold_majority_vote" | "dawid_skene"
  | "one_coin_dawid_skene" | "glad" | "mace";
const METHODS: Method[] = ["majority_vote", "dawid_skene", "one_coin_dawid_skene", "glad", "mace", "wawa",
  "zero_based_skill", "gold_majority_vote"];
interface Quality {
  kind: "real" | "training" | "exam"; exam_skill: string | null; mixer_real: number; mixer_golden: number;
  mixer_training: number; dynamic_max_overlap: number | null; dynamic_confidence: number | null;
}
interface TaskResult { task_id: string; field: string; answer: unknown; confidence: number; answers: number }
interface PoolResults {
  state: { computed_at: string | null; answers_used: number; error: string | null } | null;
  items: TaskResult[]; total: number;
}

const num = (v: string): number | null => (v.trim() === "" ? null : Number(v));

function QualityForm({ pool }: { pool: PoolView }) {
  const loaded = useLoad(() => get<Quality>(`/pools/${pool.pool_id}/quality`), [pool.pool_id]);
  const q = loaded.data;
  return <><LoadState loaded={loaded} />{q && <QualityFields pool={pool} q={q} />}</>;
}

function QualityFields({ pool, q }: { pool: PoolView; q: Quality }) {
  const [kind, setKind] = useState<Quality["kind"]>(q.kind);
  const [skill, setSkill] = useState(q.exam_skill ?? "");
  const [real, setReal] = useState(String(q.mixer_real));
  const [golden, setGolden] = useState(String(q.mixer_golden));
  const [training, setTraining] = useState(String(q.mixer_training));
  const [maxOverlap, setMaxOverlap] = useState(q.dynamic_max_overlap == null ? "" : String(q.dynamic_max_overlap));
  const [confidence, setConfidence] = useState(q.dynamic_confidence == null ? "" : String(q.dynamic_confidence));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [run, busy, notice] = useAction();
  const save = () => run(async () => {
    try {
      await api("PUT", `/admin/pools/${pool.pool_id}/quality`, {
        body: {
          kind, exam_skill: skill.trim() || null, mixer_real: Number(real) || 0, mixer_golden: Number(golden) || 0,
          mixer_training: Number(training) || 0, dynamic_max_overlap: num(maxOverlap), dynamic_confidence: num(confidence),
        },
      });
      setErrors({});
      return t("quality.saved");
    } catch (e) {
      setErrors(fieldErrors(e));
      throw e;
    }
  });
  return (
    <div class="card-inner">
      <h3>{t("quality.title")}</h3>
      <Form onSubmit={() => void save()} label={t("quality.title")}>
        <div class="row">
          <SelectField label={t("quality.kind")} value={kind} onChange={setKind}
            options={[["real", t("quality.kind.real")], ["training", t("quality.kind.training")], ["exam", t("quality.kind.exam")]]} />
          {kind === "exam" && <TextField label={t("quality.exam_skill")} value={skill} onInput={setSkill} name="exam_skill"
            error={errors.exam_skill} maxLength={64} hint={t("quality.exam_skill_hint")} />}
        </div>
        <p>{t("quality.mixer_explain")}</p>
        <div class="row">
          <TextField label={t("quality.mixer_real")} value={real} onInput={setReal} inputMode="numeric" name="mixer_real" error={errors.mixer_real} />
          <TextField label={t("quality.mixer_golden")} value={golden} onInput={setGolden} inputMode="numeric" name="mixer_golden" error={errors.mixer_golden} />
          <TextField label={t("quality.mixer_training")} value={training} onInput={setTraining} inputMode="numeric" name="mixer_training" error={errors.mixer_training} />
        </div>
        <p>{t("quality.dynamic_explain")}</p>
        <div class="row">
          <TextField label={t("quality.dynamic_max_overlap")} value={maxOverlap} onInput={setMaxOverlap} inputMode="numeric"
            name="dynamic_max_overlap" error={errors.dynamic_max_overlap} />
          <TextField label={t("quality.dynamic_confidence")} value={confidence} onInput={setConfidence} inputMode="decimal"
            name="dynamic_confidence" error={errors.dynamic_confidence} hint={t("quality.dynamic_confidence_hint")} />
        </div>
        <Button type="submit" kind="primary" busy={busy}>{t("quality.save")}</Button>
      </Form>
      <Alert notice={notice} />
    </div>
  );
}

function Aggregated({ pool }: { pool: PoolView }) {
  const [method, setMethod] = useState<Method>("majority_vote");
  const loaded = useLoad(() => get<PoolResults>(`/pools/${pool.pool_id}/results?method=${method}&limit=100`), [pool.pool_id, method]);
  const [run, busy, notice] = useAction();
  const compute = () => run(async () => {
    await post(`/admin/pools/${pool.pool_id}/aggregations`, { method });
    return t("results.requested");
  });
  const r = loaded.data;
  return (
    <div class="card-inner">
      <h3>{t("results.title")}</h3>
      <div class="row">
        <SelectField label={t("results.method")} value={method} onChange={setMethod}
          options={METHODS.map((m) => [m, t(`results.method.${m}` as Key)])} />
        <Button busy={busy} onClick={() => void compute()}>{t("results.compute")}</Button>
      </div>
      <Alert notice={notice} />
      <LoadState loaded={loaded} />
      {r && !r.state?.computed_at && <p>{t("results.not_yet")}</p>}
      {r?.state?.error && <p class="alert alert-error" role="alert">{r.state.error}</p>}
      {r && r.state?.computed_at && (
        <>
          <p>{t("results.summary", { tasks: r.total, answers: r.state.answers_used })}</p>
          <Table rows={r.items} rowKey={(i) => `${i.task_id}:${i.field}`} caption={t("results.title")} columns={[
            { label: t("results.task"), cell: (i) => <code>{i.task_id.slice(0, 8)}</code> },
            { label: t("results.field"), cell: (i) => i.field },
            { label: t("results.answer"), cell: (i) => typeof i.answer === "string" ? i.answer : JSON.stringify(i.answer) },
            { label: t("results.confidence"), cell: (i) => percent(i.confidence) },
            { label: t("results.answers"), cell: (i) => i.answers },
          ]} />
        </>
      )}
    </div>
  );
}

export interface FairPay {
  pool_id: string; currency: string; credit_minor: number; accepted_timed: number; min_measured: number;
  measured_seconds: number | null; expected_seconds_per_task: number | null;
  source: "measured" | "declared" | "unknown" | "unpaid"; seconds_per_task: number | null;
  estimate_minor_per_hour: number | null; floor_minor_per_hour: number | null;
  warning: "below_fair_pay_floor" | "fair_pay_unknown" | null;
}

/** The pool's estimated hourly earning for its worker, what it rests on, and its warning. */
function FairPayLine({ pool, fp, onChange }: { pool: PoolView; fp: FairPay | undefined; onChange: () => void }) {
  const [expected, setExpected] = useState(pool.expected_seconds_per_task == null ? "" : String(pool.expected_seconds_per_task));
  const [run, busy, notice] = useAction();
  const save = () => run(async () => {
    await api("PATCH", `/admin/pools/${pool.pool_id}`, { body: { expected_seconds_per_task: expected.trim() ? Number(expected) : null } });
    onChange();
    return t("fair_pay.expected_saved");
  });
  if (!fp) return null;
  return (
    <div class="fair-pay">
      <p>
        {t("fair_pay.estimate")}:{" "}
        {fp.estimate_minor_per_hour !== null
          ? <strong><Money minor={fp.estimate_minor_per_hour} currency={fp.currency} />{t("fair_pay.per_hour")}</strong>
          : t(`fair_pay.source.${fp.source}` as Key)}
        {fp.estimate_minor_per_hour !== null && <> ({t(`fair_pay.source.${fp.source}` as Key, {
          s: number(fp.seconds_per_task ?? 0, 1) })})</>}
        {" "}· {t("fair_pay.measured", { count: fp.accepted_timed, min: fp.min_measured })}
        {fp.floor_minor_per_hour !== null && <> · {t("fair_pay.floor")}: <Money minor={fp.floor_minor_per_hour} currency={fp.currency} />{t("fair_pay.per_hour")}</>}
      </p>
      {fp.warning && <p class="alert alert-error" role="alert">{t(`fair_pay.warning.${fp.warning}` as Key)}</p>}
      {pool.status !== "archived" && (
        <Form onSubmit={() => void save()} label={t("fair_pay.expected")}>
          <div class="row">
            <TextField label={t("fair_pay.expected")} value={expected} onInput={setExpected} inputMode="numeric"
              name={`expected-${pool.pool_id}`} hint={t("fair_pay.expected_hint")} />
            <Button type="submit" busy={busy}>{t("common.save")}</Button>
          </div>
        </Form>
      )}
      <Alert notice={notice} />
    </div>
  );
}

interface TaskItem {
  task_id: string; input: Record<string, unknown>; is_control: boolean; control_answers: Record<string, unknown> | null;
  hint: string | null; overlap: number; live_assignments: number; created_at: string;
}
const TASKS_PAGE = 50;
const valueText = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
const pairs = (o: Record<string, unknown> | null) => Object.entries(o ?? {}).map(([k, v]) => `${k}: ${valueText(v)}`).join(", ");

/** A known-answer task's hint: what a worker reads after a training answer. */
function HintEditor({ pool, task }: { pool: PoolView; task: TaskItem }) {
  const [text, setText] = useState(task.hint ?? "");
  const [saved, setSaved] = useState(task.hint ?? "");
  const [run, busy, notice] = useAction();
  const save = () => run(async () => {
    const r = await api<{ saved: number }>("PUT", `/admin/pools/${pool.pool_id}/hints`, {
      body: { hints: [{ task_id: task.task_id, hint: text.trim() }] } });
    if (r.saved !== 1) throw new ApiError(404, "task_not_found", "the task is not in this pool");
    setSaved(text.trim());
    return t("hints.saved");
  });
  return (
    <div class="stack">
      <TextField label={t("hints.hint")} value={text} onInput={setText} multiline rows={2} maxLength={5000}
        name={`hint-${task.task_id}`} />
      <Button busy={busy} disabled={!text.trim() || text.trim() === saved} onClick={() => void save()}>{t("hints.save")}</Button>
      <Alert notice={notice} />
    </div>
  );
}

/** A pool's tasks, a page at a time; known-answer tasks get their hint set here. */
function TaskList({ pool }: { pool: PoolView }) {
  const [offset, setOffset] = useState(0);
  const loaded = useLoad(() => get<Page<TaskItem>>(`/pools/${pool.pool_id}/tasks?limit=${TASKS_PAGE}&offset=${offset}`),
    [pool.pool_id, offset]);
  const d = loaded.data;
  return (
    <div class="card-inner">
      <h3>{t("hints.title")}</h3>
      <p>{t("hints.explain")}</p>
      <LoadState loaded={loaded} empty={!!d && d.items.length === 0} />
      {d && d.items.length > 0 && (
        <>
          <p class="muted">{t("hints.count", { n: d.total, from: offset + 1, to: offset + d.items.length })}</p>
          <Table rows={d.items} rowKey={(x) => x.task_id} columns={[
            { label: t("results.task"), cell: (x) => <span><code>{x.task_id.slice(0, 8)}</code><br /><span class="break">{pairs(x.input)}</span></span> },
            { label: t("hints.known"), cell: (x) => (x.is_control ? <strong>{pairs(x.control_answers)}</strong> : <span class="muted">{t("hints.no_known")}</span>) },
            { label: t("hints.hint"), cell: (x) => (x.is_control ? <HintEditor pool={pool} task={x} key={x.task_id} /> : "—") },
          ]} />
          <Pager onNewer={offset > 0 ? () => setOffset(Math.max(0, offset - TASKS_PAGE)) : null}
            onOlder={offset + d.items.length < d.total ? () => setOffset(offset + TASKS_PAGE) : null} />
        </>
      )}
    </div>
  );
}

async function download(pool: PoolView, format: string) {
  const r = await request("GET", `/admin/pools/${pool.pool_id}/results?format=${format}`);
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${pool.name.replace(/[^\w.-]+/g, "_")}.${format}`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function PoolCard({ pool, project, fp, onChange }: { pool: PoolView; project: string; fp: FairPay | undefined; onChange: () => void }) {
  const [open, setOpen] = useState(false);
  const [panel, setPanel] = useState<"" | "quality" | "results" | "tasks">("");
  const [run, busy, notice] = useAction();
  const act = (what: "open" | "close" | "archive") => run(async () => {
    await post(`/admin/pools/${pool.pool_id}/${what}`);
    onChange();
    return t(`pools_admin.${what}_done` as Key);
  });
  return (
    <Section title={pool.name} actions={<>{pool.sandbox && <SandboxMark />}<Badge value={pool.status} text={t(`pool.${pool.status}` as Key)} /></>}>
      {pool.sandbox && <p class="muted">{t("sandbox.pool_note")}</p>}
      <p>
        {project} · {t("pools_admin.price")}: {pool.price_minor != null && pool.currency ? <Money minor={pool.price_minor} currency={pool.currency} /> : "—"}
        {" "}· {t("pools_admin.overlap")}: {pool.overlap} · {t("pools_admin.timeout")}: {pool.assignment_timeout_s}
      </p>
      <FairPayLine pool={pool} fp={fp} onChange={onChange} key={`${pool.pool_id}:${pool.expected_seconds_per_task ?? ""}`} />
      <div class="row">
        {(pool.status === "draft" || pool.status === "closed") && <Button kind="primary" busy={busy} onClick={() => void act("open")}>{t("pools_admin.open")}</Button>}
        {pool.status === "open" && <Button busy={busy} onClick={() => void act("close")}>{t("pools_admin.close")}</Button>}
        {pool.status === "open" && pool.sandbox && <a class="btn btn-primary" href={href("/sandbox")}>{t("sandbox.try")}</a>}
        {(pool.status === "draft" || pool.status === "closed") && <Button busy={busy} onClick={() => void act("archive")}>{t("pools_admin.archive")}</Button>}
        {pool.status !== "archived" && <Button onClick={() => setOpen(!open)} name={`upload-toggle-${pool.pool_id}`}>{t("upload.title")}</Button>}
        <Button onClick={() => setPanel(panel === "quality" ? "" : "quality")} name={`quality-${pool.pool_id}`}>{t("quality.title")}</Button>
        <Button onClick={() => setPanel(panel === "results" ? "" : "results")} name={`aggregated-${pool.pool_id}`}>{t("results.title")}</Button>
        <Button onClick={() => setPanel(panel === "tasks" ? "" : "tasks")} name={`tasks-${pool.pool_id}`}>{t("hints.title")}</Button>
        <Button kind="link" onClick={() => void run(async () => download(pool, "csv"))}>{t("pools_admin.results")}</Button>
      </div>
      <Alert notice={notice} />
      {open && <Upload pool={pool} onDone={onChange} />}
      {panel === "quality" && <QualityForm pool={pool} />}
      {panel === "results" && <Aggregated pool={pool} />}
      {panel === "tasks" && <TaskList pool={pool} />}
    </Section>
  );
}

function AdminPools() {
  const wanted = new URLSearchParams(location.hash.split("?")[1] ?? "").get("project") ?? "";
  const [filter, setFilter] = useState(wanted);
  const projects = useLoad(() => get<Page<Project>>("/projects?limit=500"));
  const pools = useLoad(() => get<Page<PoolView>>(`/admin/pools?limit=500${filter ? `&project_id=${filter}` : ""}`), [filter]);
  const fairPay = useLoad(() => get<Page<FairPay>>(`/admin/fair-pay/pools?limit=500${filter ? `&project_id=${filter}` : ""}`), [filter]);
  const ps = projects.data?.items ?? [];
  const name = new Map(ps.map((p) => [p.project_id, p.name]));
  const items = pools.data?.items ?? [];
  const fps = new Map((fairPay.data?.items ?? []).map((f) => [f.pool_id, f]));
  const reload = () => { void pools.reload(); void fairPay.reload(); };
  return (
    <>
      <LoadState loaded={projects} />
      {projects.data && <NewPool projects={ps} onDone={reload} />}
      <SelectField label={t("pools_admin.project")} value={filter} onChange={setFilter}
        options={[["", t("common.all")], ...ps.map((p) => [p.project_id, p.name] as [string, string])]} />
      <LoadState loaded={pools} empty={!!pools.data && items.length === 0} />
      {items.map((p) => <PoolCard key={p.pool_id} pool={p} project={name.get(p.project_id) ?? ""} fp={fps.get(p.pool_id)} onChange={reload} />)}
    </>
  );
}

const screen: Screen = {
  path: "/admin/pools", access: ["admin"], title: "pools_admin.title", component: AdminPools,
  nav: { group: "setup", order: 2 },
};
export default screen;
