import { useState } from "preact/hooks";
import { get, post } from "../api";
import { fieldErrors } from "../errors";
import { t } from "../i18n";
import { href, type Screen } from "../router";
import type { FieldSpec, FieldType, Page, Project } from "../types";
import {
  Alert, Button, CheckField, Form, LoadState, Markdown, SandboxMark, Section, SelectField, Table, TextField, When, useAction,
  useLoad,
} from "../ui";

const TYPES: FieldType[] = ["string", "integer", "number", "boolean", "url", "json"];

interface Row { name: string; type: FieldType; required: boolean; allowed: string }

function toSpec(rows: Row[]): FieldSpec[] {
  return rows.filter((r) => r.name.trim()).map((r) => ({
    name: r.name.trim(), type: r.type, required: r.required,
    allowed_values: r.allowed.trim() ? r.allowed.split(",").map((v) => v.trim()).filter(Boolean) : null,
  }));
}

function SpecEditor({ legend, rows, onChange, error }: { legend: string; rows: Row[]; onChange: (r: Row[]) => void; error?: string }) {
  const set = (i: number, patch: Partial<Row>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset class="spec">
      <legend>{legend}</legend>
      {rows.map((r, i) => (
        <div class="spec-row" key={i}>
          <TextField label={t("spec.name")} value={r.name} onInput={(v) => set(i, { name: v })} name={`${legend}-name-${i}`} />
          <SelectField label={t("spec.type")} value={r.type} onChange={(v) => set(i, { type: v })}
            options={TYPES.map((ty) => [ty, t(`spec.type.${ty}`)])} />
          <TextField label={t("spec.allowed")} value={r.allowed} onInput={(v) => set(i, { allowed: v })} hint={t("spec.allowed_hint")} />
          <CheckField label={t("spec.required")} checked={r.required} onChange={(v) => set(i, { required: v })} />
          {rows.length > 1 && <Button kind="link" onClick={() => onChange(rows.filter((_, j) => j !== i))}>{t("common.remove")}</Button>}
        </div>
      ))}
      <Button onClick={() => onChange([...rows, { name: "", type: "string", required: true, allowed: "" }])}>{t("spec.add")}</Button>
      {error && <p class="field-error">{error}</p>}
    </fieldset>
  );
}

function NewProject({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [instructions, setInstructions] = useState("");
  const [input, setInput] = useState<Row[]>([{ name: "", type: "string", required: true, allowed: "" }]);
  const [output, setOutput] = useState<Row[]>([{ name: "", type: "string", required: true, allowed: "" }]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [preview, setPreview] = useState(false);
  const [sandbox, setSandbox] = useState(false);
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    try {
      const p = await post<Project>("/admin/projects", {
        name: name.trim(), instructions, input_spec: toSpec(input), output_spec: toSpec(output), sandbox,
      });
      setName(""); setInstructions(""); setSandbox(false);
      onDone();
      return t("projects.created", { name: p.name });
    } catch (e) {
      setErrors(fieldErrors(e));
      throw e;
    }
  });
  const specError = (prefix: string) => Object.entries(errors).find(([k]) => k.startsWith(prefix))?.[1];
  return (
    <Section title={t("projects.new")}>
      <Form onSubmit={() => void submit()} label={t("projects.new")}>
        <TextField label={t("projects.name")} value={name} onInput={setName} name="project_name" error={errors.name} maxLength={200} />
        <TextField label={t("projects.instructions")} value={instructions} onInput={setInstructions} multiline rows={6}
          name="instructions" hint={t("projects.instructions_hint")} error={errors.instructions} />
        <Button kind="link" onClick={() => setPreview(!preview)}>{preview ? t("projects.hide_preview") : t("projects.preview")}</Button>
        {preview && <div class="preview"><Markdown text={instructions} /></div>}
        <SpecEditor legend={t("projects.input_spec")} rows={input} onChange={setInput} error={specError("input_spec")} />
        <SpecEditor legend={t("projects.output_spec")} rows={output} onChange={setOutput} error={specError("output_spec")} />
        <CheckField label={t("projects.sandbox")} checked={sandbox} onChange={setSandbox} />
        <p class="hint muted">{t("projects.sandbox_hint")}</p>
        <Button type="submit" kind="primary" busy={busy}>{t("projects.create")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function Projects() {
  const projects = useLoad(() => get<Page<Project>>("/projects?limit=500"));
  const items = projects.data?.items ?? [];
  return (
    <>
      <NewProject onDone={() => void projects.reload()} />
      <Section title={t("projects.list")}>
        <LoadState loaded={projects} empty={!!projects.data && items.length === 0} />
        {items.length > 0 && (
          <Table rows={items} rowKey={(p) => p.project_id} columns={[
            { label: t("projects.name"), cell: (p) => <>{p.name}{p.sandbox && <SandboxMark />}</> },
            { label: t("projects.input_spec"), cell: (p) => p.input_spec.map((f) => f.name).join(", ") },
            { label: t("projects.output_spec"), cell: (p) => p.output_spec.map((f) => f.name).join(", ") },
            { label: t("common.created"), cell: (p) => <When at={p.created_at} /> },
            { label: t("common.actions"), cell: (p) => <a href={href(`/admin/pools?project=${p.project_id}`)}>{t("projects.pools")}</a> },
          ]} />
        )}
      </Section>
    </>
  );
}

const screen: Screen = {
  path: "/admin/projects", access: ["admin"], title: "projects.title", component: Projects,
  nav: { group: "setup", order: 1 },
};
export default screen;
