import { useState } from "preact/hooks";
import { get, meStore, post } from "../api";
import { t, type Key } from "../i18n";
import { go, href, type Screen } from "../router";
import { loadNames } from "../staff";
import { useStore } from "../store";
import type { Submission } from "../types";
import {
  Alert, Badge, Button, Countdown, Facts, Form, LoadState, SafeLink, SandboxMark, Section, TextField, When, useAction,
  useLoad,
} from "../ui";

function Proof({ proof }: { proof: string }) {
  const [first, ...rest] = proof.split("\n");
  return /^https?:\/\//i.test(first)
    ? <><SafeLink url={first} />{rest.length > 0 && <p class="pre">{rest.join("\n")}</p>}</>
    : <p class="pre">{proof}</p>;
}

function value(v: unknown) {
  if (typeof v === "string") return /^https?:\/\//i.test(v) ? <SafeLink url={v} /> : v;
  if (typeof v === "boolean") return v ? t("common.yes") : t("common.no");
  return String(JSON.stringify(v));
}

function SubmissionScreen({ params }: { params: Record<string, string> }) {
  const me = useStore(meStore);
  const loaded = useLoad(() => get<Submission>(`/review/submissions/${encodeURIComponent(params.id)}`), [params.id]);
  const names = useLoad(loadNames);
  const [comment, setComment] = useState("");
  const [commentError, setCommentError] = useState("");
  const [run, busy, notice] = useAction();
  const s = loaded.data;
  const n = names.data;
  const mine = !!s && s.lock_holder === me?.user_id && !!s.lock_until && new Date(s.lock_until) > new Date();
  const heldByOther = !!s && !!s.lock_holder && !mine && !!s.lock_until && new Date(s.lock_until) > new Date();

  const act = (what: "lock" | "unlock") => run(async () => {
    await post(`/review/submissions/${s!.assignment_id}/${what}`);
    await loaded.reload();
    return t(what === "lock" ? "review.locked_now" : "review.unlocked_now");
  });
  const decide = (what: "accept" | "reject") => run(async () => {
    if (what === "reject" && !comment.trim()) {
      setCommentError(t("review.reject_needs_comment"));
      return;
    }
    setCommentError("");
    await post(`/review/submissions/${s!.assignment_id}/${what}`, { comment: comment.trim() || null });
    setComment("");
    await loaded.reload();
    return t(what === "accept" ? "review.accepted_now" : "review.rejected_now");
  });
  const next = () => run(async () => {    // the next one of the same pool
    const r = await post<Submission>("/review/next", { pool_id: s!.pool_id });
    go(`/review/${r.assignment_id}`);
  });

  return (
    <>
      <p><a href={href("/review")}>← {t("review.back")}</a></p>
      <LoadState loaded={loaded} />
      {s && (
        <>
          <Section title={t("review.submission")} actions={s.sandbox ? <SandboxMark /> : undefined}>
            <Facts items={[
              [t("common.status"), <Badge value={s.status} text={t(`submission.${s.status}` as Key)} />],
              [t("common.pool"), n ? n.pool(s.pool_id) : "…"],
              [t("common.worker"), n ? n.user(s.worker_id) : "…"],
              [t("review.submitted"), <When at={s.submitted_at} />],
              ...(s.is_control ? [[t("review.control"), s.control_correct ? t("review.control_ok") : t("review.control_bad")] as [string, string]] : []),
              [t("review.lock"), mine ? <Countdown until={s.lock_until!} label={t("review.locked_by_me")} />
                : heldByOther ? <>{t("review.locked_by", { who: n ? n.user(s.lock_holder) : "…" })} {t("review.lock_until")} <When at={s.lock_until} /></>
                : t("review.free")],
            ]} />
          </Section>
          <Section title={t("review.answers")}>
            <Facts items={Object.entries(s.answers).map(([k, v]) => [k, value(v)])} />
            <h3>{t("review.proof")}</h3>
            {s.proof ? <Proof proof={s.proof} /> : <p class="muted">{t("review.no_proof")}</p>}
            <h3>{t("review.worker_comment")}</h3>
            <p class="pre">{s.comment || "—"}</p>
            <p><a href={href(`/chat/assignment/${s.assignment_id}`)}>{t("chat.with_worker")}</a></p>
          </Section>
          {s.status === "pending" ? (
            <Section title={t("review.decision")}>
              {!mine && <p>{heldByOther ? t("review.held_explain") : t("review.lock_explain")}</p>}
              <div class="row">
                {!mine && <Button kind="primary" onClick={() => void act("lock")} busy={busy}>{t("review.do_lock")}</Button>}
                {mine && <Button onClick={() => void act("unlock")} busy={busy}>{t("review.do_unlock")}</Button>}
              </div>
              {mine && (
                <Form onSubmit={() => void decide("accept")} label={t("review.decision")}>
                  <TextField label={t("review.comment")} value={comment} onInput={setComment} multiline rows={3}
                    name="review_comment" hint={t("review.comment_hint")} error={commentError} maxLength={2000} />
                  <div class="row">
                    <Button type="submit" kind="primary" busy={busy}>{t("review.accept")}</Button>
                    <Button kind="danger" onClick={() => void decide("reject")} busy={busy}>{t("review.reject")}</Button>
                  </div>
                </Form>
              )}
              <Alert notice={notice} />
            </Section>
          ) : (
            <Section title={t("review.decision")}>
              <Facts items={[
                [t("review.decided_by"), n ? n.user(s.decided_by) : "…"],
                [t("review.decided_at"), <When at={s.decided_at} />],
                [t("review.comment"), s.review_comment || "—"],
              ]} />
              <Alert notice={notice} />
              <Button kind="primary" onClick={() => void next()} busy={busy}>{t("review.next")}</Button>
            </Section>
          )}
        </>
      )}
    </>
  );
}

const screen: Screen = { path: "/review/:id", access: ["manager", "admin"], title: "review.submission", component: SubmissionScreen };
export default screen;
