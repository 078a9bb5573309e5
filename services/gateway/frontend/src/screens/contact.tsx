import { useState } from "preact/hooks";
import { ApiError, post } from "../api";
import { t } from "../i18n";
import type { Screen } from "../router";
import { Alert, Button, Form, Section, TextField, useAction } from "../ui";

interface Challenge { challenge_id: string; image_png_base64: string }

// The public intake form for prospective requesters. "website" is a honeypot: hidden from
// people (and from assistive technology), a bot that fills it is dropped by the server.
function Contact() {
  const [name, setName] = useState("");
  const [contact, setContact] = useState("");
  const [company, setCompany] = useState("");
  const [message, setMessage] = useState("");
  const [website, setWebsite] = useState("");
  const [challenge, setChallenge] = useState<Challenge | null>(null);
  const [answer, setAnswer] = useState("");
  const [sent, setSent] = useState(false);
  const [run, busy, notice] = useAction();
  const submit = () => run(async () => {
    try {
      await post("/leads", {
        name: name.trim(), contact: contact.trim(), company: company.trim(), message: message.trim(), website,
        ...(challenge ? { captcha_id: challenge.challenge_id, captcha_answer: answer.trim() } : {}),
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 428) {
        setChallenge(e.details as Challenge);
        setAnswer("");
        if (e.code === "captcha_wrong") throw e;
        return t("leads.captcha_needed");
      }
      throw e;
    }
    setSent(true);
    setChallenge(null);
    return t("leads.sent");
  });
  if (sent) {
    return (
      <Section>
        <Alert notice={notice} />
        <Button onClick={() => { setSent(false); setMessage(""); }}>{t("leads.another")}</Button>
      </Section>
    );
  }
  return (
    <Section>
      <p>{t("leads.explain")}</p>
      <Form onSubmit={() => void submit()} label={t("leads.title")}>
        <TextField label={t("leads.name")} value={name} onInput={setName} name="name" maxLength={200} autoComplete="name" required />
        <TextField label={t("leads.contact")} value={contact} onInput={setContact} name="contact" maxLength={200} autoComplete="email" required
          hint={t("leads.contact_hint")} />
        <TextField label={t("leads.company")} value={company} onInput={setCompany} name="company" maxLength={200} autoComplete="organization" />
        <TextField label={t("leads.message")} value={message} onInput={setMessage} name="message" maxLength={5000} multiline rows={5} required />
        <div class="honeypot" aria-hidden="true">
          <label for="lead-website">Website</label>
          <input id="lead-website" name="website" type="text" tabIndex={-1} autoComplete="off" value={website}
            onInput={(e) => setWebsite((e.target as HTMLInputElement).value)} />
        </div>
        {challenge && (
          <div data-testid="lead-captcha">
            <img class="captcha" src={`data:image/png;base64,${challenge.image_png_base64}`} alt={t("captcha.alt")} />
            <TextField label={t("captcha.answer")} value={answer} onInput={setAnswer} autoComplete="off" name="captcha" maxLength={32} />
          </div>
        )}
        <Button type="submit" kind="primary" busy={busy}>{t("leads.send")}</Button>
      </Form>
      <Alert notice={notice} />
    </Section>
  );
}

const screen: Screen = { path: "/contact", access: "public", title: "leads.title", component: Contact };
export default screen;
