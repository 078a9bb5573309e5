import { useState } from "preact/hooks";
import { get, meStore, post, request } from "../api";
import { t, useLang } from "../i18n";
import type { Screen } from "../router";
import { useStore } from "../store";
import { Alert, Button, LoadState, Markdown, Section, When, useAction, useLoad } from "../ui";

interface LegalSummary { doc_id: string; lang: string; title: string; version: string; effective: string }
interface LegalDoc extends LegalSummary { markdown: string; html: string }
interface TermsStatus {
  doc_id: string; current_version: string; accepted_version: string | null;
  accepted_at: string | null; needs_acceptance: boolean;
}

async function downloadPdf(doc: LegalSummary) {
  const r = await request("GET", `/legal/${doc.doc_id}/pdf?lang=${doc.lang}`);
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${doc.doc_id}-${doc.lang}-${doc.version}.pdf`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function Terms() {
  const lng = useLang();
  const status = useLoad(() => get<TermsStatus>(`/worker/terms?lang=${lng}`), [lng]);
  const [run, busy, notice] = useAction();
  const accept = () => run(async () => {
    await post("/worker/terms/accept", { version: status.data!.current_version, lang: lng });
    await status.reload();
    return t("legal.accepted_now");
  });
  const s = status.data;
  return (
    <Section title={t("legal.terms_acceptance")}>
      <LoadState loaded={status} />
      {s && (s.needs_acceptance ? (
        <div data-testid="terms-acceptance">
          <p class="alert alert-info" role="status">{t("legal.accept_needed", { version: s.current_version })}</p>
          <Button kind="primary" busy={busy} onClick={() => void accept()}>{t("legal.accept")}</Button>
        </div>
      ) : (
        <p class="alert alert-success" role="status" data-testid="terms-acceptance">
          {t("legal.accepted", { version: s.current_version })} <When at={s.accepted_at} />
        </p>
      ))}
      <Alert notice={notice} />
    </Section>
  );
}

function Legal() {
  const lng = useLang();
  const me = useStore(meStore);
  const [chosen, setChosen] = useState("terms");
  const docs = useLoad(() => get<{ items: LegalSummary[] }>(`/legal?lang=${lng}`), [lng]);
  const doc = useLoad(() => get<LegalDoc>(`/legal/${chosen}?lang=${lng}`), [chosen, lng]);
  const [run, busy, notice] = useAction();
  return (
    <>
      <p class="lead">{t("legal.documents.explain")}</p>
      {me?.role === "worker" && <Terms />}
      <Section title={t("legal.documents")}>
        <LoadState loaded={docs} />
        <div class="row" role="group" aria-label={t("legal.documents")}>
          {(docs.data?.items ?? []).map((d) => (
            <Button key={d.doc_id} kind={d.doc_id === chosen ? "primary" : "secondary"} onClick={() => setChosen(d.doc_id)}>
              {d.title}
            </Button>
          ))}
        </div>
      </Section>
      {doc.data && (
        <Section title={doc.data.title} actions={
          <Button busy={busy} onClick={() => void run(() => downloadPdf(doc.data!))}>{t("legal.pdf")}</Button>}>
          <p class="muted">{t("legal.version", { version: doc.data.version, effective: doc.data.effective })}</p>
          <Alert notice={notice} />
          <div data-testid="legal-doc"><Markdown text={doc.data.markdown} /></div>
        </Section>
      )}
    </>
  );
}

const screen: Screen = {
  path: "/legal", access: "any", title: "legal.title", component: Legal,
  nav: { group: "help", order: 2 },
};
export default screen;
