import { useState } from "preact/hooks";
import { ApiError, get, post } from "../api";
import { clock, money } from "../format";
import { t, type Key } from "../i18n";
import { go, href, type Screen } from "../router";
import type { TakeResult } from "../types";
import {
  Alert, Button, Form, LoadState, Money, Section, TextField, When, fail, useAction, useLoad, useSecondsLeft,
  type Notice,
} from "../ui";

interface Offer {
  pool_id: string; project_id: string; name: string; instructions: string; priority: number;
  available_tasks: number; credit_minor: number | null; currency: string | null;
  hourly_minor: number | null; hourly_source: "measured" | "declared" | null;
}
interface TakeState {
  can_take: boolean; blocked_by: "max_active" | "min_pause" | null; trust_level: string;
  active: number; max_active: number; min_pause_s: number; pause_left_s: number;
}
interface Restriction { scope: "pool" | "project" | "all"; pool_id: string | null; project_id: string | null; name: string | null; until: string | null }
interface Overview { pools: Offer[]; take: TakeState; restrictions: Restriction[] }
interface Captcha { challenge_id: string; image_png_base64: string; pool_id: string | null }

function TakeStatus({ take }: { take: TakeState }) {
  const [loadedAt] = useState(() => new Date(Date.now() + take.pause_left_s * 1000).toISOString());
  const pauseLeft = useSecondsLeft(take.blocked_by === "min_pause" ? loadedAt : null);
  return (
    <div class="take-status">
      <p>
        {t("pools.trust", { level: t(`trust.${take.trust_level}` as Key) })}{" "}
        {t("pools.active_of", { n: take.active, max: take.max_active })}
        {take.min_pause_s > 0 && <> {t("pools.pause_rule", { s: take.min_pause_s })}</>}
      </p>
      {take.blocked_by === "max_active" && (
        <p class="alert alert-info" role="status">
          {t("pools.blocked_max_active")} <a href={href("/task")}>{t("pools.to_active")}</a>
        </p>
      )}
      {take.blocked_by === "min_pause" && pauseLeft !== null && pauseLeft > 0 && (
        <p class="alert alert-info" role="status">{t("pools.blocked_pause", { left: clock(Math.ceil(pauseLeft)) })}</p>
      )}
    </div>
  );
}

function CaptchaForm({ captcha, onPassed, onCancel }: { captcha: Captcha; onPassed: () => void; onCancel: () => void }) {
  const [answer, setAnswer] = useState("");
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    const r = await post<{ correct: boolean }>("/worker/captcha", { challenge_id: captcha.challenge_id, answer: answer.trim() });
    if (!r.correct) throw new ApiError(400, "captcha_wrong", "wrong");
    onPassed();
  });
  return (
    <Section title={t("captcha.title")}>
      <p>{t("captcha.explain")}</p>
      <img class="captcha" src={`data:image/png;base64,${captcha.image_png_base64}`} alt={t("captcha.alt")} />
      <Form onSubmit={() => void submit()} label={t("captcha.title")}>
        <TextField label={t("captcha.answer")} value={answer} onInput={setAnswer} autoComplete="off" name="captcha" />
        <div class="row">
          <Button type="submit" kind="primary" busy={busy}>{t("captcha.submit")}</Button>
          <Button onClick={onCancel}>{t("common.cancel")}</Button>
        </div>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

function Pools() {
  const loaded = useLoad(() => get<Overview>("/worker/overview"), [], ["credits", "assignments", "restrictions"]);
  const [notice, setNotice] = useState<Notice>(null);
  const [busyPool, setBusyPool] = useState<string | null>(null);
  const [captcha, setCaptcha] = useState<Captcha | null>(null);
  const data = loaded.data;

  const take = async (poolId: string | null) => {
    setBusyPool(poolId ?? "*");
    setNotice(null);
    try {
      const a = await post<TakeResult>("/worker/tasks/take", poolId ? { pool_id: poolId } : {});
      go(`/task/${a.assignment_id}`);
    } catch (e) {
      if (e instanceof ApiError && e.code === "captcha_required") {
        const d = e.details as { challenge_id: string; image_png_base64: string };
        setCaptcha({ ...d, pool_id: poolId });
      } else {
        setNotice(fail(e));
        void loaded.reload();
      }
    } finally {
      setBusyPool(null);
    }
  };

  if (captcha) {
    return <CaptchaForm captcha={captcha} onCancel={() => setCaptcha(null)}
      onPassed={() => { const p = captcha.pool_id; setCaptcha(null); void take(p); }} />;
  }
  return (
    <>
      <p class="lead">{t("pools.explain")}</p>
      <LoadState loaded={loaded} empty={!!data && data.pools.length === 0 && data.restrictions.length === 0} />
      <Alert notice={notice} />
      {data && <TakeStatus take={data.take} key={JSON.stringify(data.take)} />}
      {data && data.restrictions.length > 0 && (
        <Section title={t("pools.restrictions")}>
          <ul class="plain">
            {data.restrictions.map((r, i) => (
              <li key={i} class="alert alert-error">
                {t(`pools.restricted.${r.scope}` as Key, { name: r.name ?? "—" })}{" "}
                {r.until ? <>{t("pools.until")} <When at={r.until} /></> : t("pools.until_lifted")}
              </li>
            ))}
          </ul>
        </Section>
      )}
      {data && data.pools.length > 0 && (
        <div class="cards">
          {data.pools.map((p) => (
            <Section key={p.pool_id} title={p.name}>
              <p class="offer">
                {p.credit_minor !== null && p.currency
                  ? <>{t("pools.earn")}: <strong><Money minor={p.credit_minor} currency={p.currency} /></strong></>
                  : t("pools.earn_unknown")}
              </p>
              {p.hourly_minor !== null && p.currency && (
                <p class="hourly" title={t(`pools.hourly_source.${p.hourly_source ?? "declared"}` as Key)}>
                  {t("pools.hourly", { money: money(p.hourly_minor, p.currency) })}{" "}
                  <span class="muted">({t(`pools.hourly_source.${p.hourly_source ?? "declared"}` as Key)})</span>
                </p>
              )}
              <p>{t("pools.available", { n: p.available_tasks })}</p>
              <Button kind="primary" onClick={() => void take(p.pool_id)} busy={busyPool === p.pool_id}
                disabled={!data.take.can_take || p.available_tasks === 0}>
                {t("pools.take")}
              </Button>
              {p.available_tasks === 0 && <p class="muted">{t("pools.none_free")}</p>}
            </Section>
          ))}
        </div>
      )}
    </>
  );
}

const screen: Screen = {
  path: "/pools", access: ["worker"], title: "pools.title", component: Pools,
  nav: { group: "work", order: 1 },
};
export default screen;
