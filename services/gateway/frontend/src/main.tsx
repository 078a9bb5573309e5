// The web UI: boot (login link, session, status), the page frame and the screen of the route.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  ApiError, loadMe, meStore, post, refreshStatus, signIn, signOut,
  statusStore, tokenStore, type Role,
} from "./api";
import { errorText } from "./errors";
import { LANGS, setLang, t, useLang, type Key } from "./i18n";
import { startLive } from "./live";
import { allowed, go, href, match, pathStore, type NavGroup, type Screen } from "./router";
import { SCREENS } from "./screens";
import { useStore } from "./store";
import { Alert, type Notice } from "./ui";
import "./styles.css";

const HOME: Record<Role, string> = { worker: "/pools", manager: "/review", admin: "/admin/dashboard" };
const GROUPS: NavGroup[] = ["work", "money", "review", "setup", "owner", "help"];

/** A login link's token arrives in the URL fragment: exchange it once, then wipe it. */
async function exchangeLinkToken(): Promise<Notice> {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", location.pathname + location.search);
  pathStore.set("/");
  try {
    const r = await post<{ token: string }>("/auth/login-link", { token: decodeURIComponent(m[1]) });
    await signIn(r.token);
    return { kind: "success", text: t("login.link_ok") };
  } catch (e) {
    return { kind: "error", text: errorText(e) };
  }
}

function Banner() {
  const status = useStore(statusStore);
  useLang();
  if (!status?.read_only) return null;
  return (
    <div class="banner" role="alert" data-testid="read-only-banner">
      <strong>{t("banner.read_only")}</strong>{" "}
      {t("banner.read_only_explain")}
      {status.read_only_reason ? ` ${t("common.reason")}: ${status.read_only_reason}` : ""}
    </div>
  );
}

function LangSwitch() {
  const current = useLang();
  return (
    <div class="lang" role="group" aria-label={t("lang.label")}>
      {LANGS.map((l) => (
        <button type="button" key={l} class={`lang-btn${l === current ? " on" : ""}`}
          aria-pressed={l === current} lang={l} onClick={() => setLang(l)}>
          {l === "ru" ? "Русский" : "English"}
        </button>
      ))}
    </div>
  );
}

function Nav({ role, path, onPick }: { role: Role; path: string; onPick: () => void }) {
  const items = SCREENS.filter((s) => s.nav && allowed(s, role) && (!s.nav.roles || s.nav.roles.includes(role)));
  return (
    <nav id="nav" aria-label={t("nav.label")}>
      {GROUPS.map((g) => {
        const inGroup = items.filter((s) => s.nav!.group === g).sort((a, b) => a.nav!.order - b.nav!.order);
        if (!inGroup.length) return null;
        return (
          <div class="nav-group" key={g}>
            <h2 class="nav-title">{t(`nav.group.${g}` as Key)}</h2>
            <ul>
              {inGroup.map((s) => (
                <li key={s.path}>
                  <a href={href(s.path)} aria-current={path === s.path ? "page" : undefined}
                    onClick={onPick}>{t(s.title)}</a>
                </li>
              ))}
            </ul>
          </div>
        );
      })}
    </nav>
  );
}

function screenFor(path: string, role: Role | null, mustChange: boolean): { screen: Screen; params: Record<string, string> } {
  const find = (p: string) => match(SCREENS, p)!;
  if (role && mustChange) return find("/password");
  const found = match(SCREENS, path);
  if (!role) {
    if (found && found.screen.access === "public") return found;
    return find("/login");
  }
  if (!found || path === "/" || path === "/login") return find(HOME[role]);
  if (!allowed(found.screen, role)) return find("/forbidden");
  return found;
}

function App() {
  useLang();
  const me = useStore(meStore);
  const token = useStore(tokenStore);
  const path = useStore(pathStore);
  const [booted, setBooted] = useState(false);
  const [bootNotice, setBootNotice] = useState<Notice>(null);
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    void (async () => {
      await refreshStatus();
      setBootNotice(await exchangeLinkToken());
      try {
        await loadMe();
      } catch (e) {
        setBootNotice({ kind: "error", text: errorText(e) });
      }
      setBooted(true);
    })();
    startLive();
    const id = setInterval(() => void refreshStatus(), 30000);
    return () => clearInterval(id);
  }, []);

  useEffect(() => {
    if (token && !me) void loadMe().catch(() => undefined);
  }, [token]);

  if (!booted) return <p class="boot">{t("common.loading")}</p>;
  const role = token && me ? me.role : null;
  const { screen, params } = screenFor(path, role, !!me?.must_change_password);
  const Body = screen.component;
  document.title = `${t(screen.title)} · Microtask Engine`;
  const showNav = !!role && !me?.must_change_password;

  return (
    <div class={`shell${showNav ? " with-nav" : ""}`}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        {t("nav.skip")}
      </a>
      <header class="top">
        <div class="brand">
          {showNav && (
            <button type="button" class="menu-btn" aria-expanded={menuOpen} aria-controls="nav"
              onClick={() => setMenuOpen(!menuOpen)}>
              <span aria-hidden="true">☰</span> {t("nav.menu")}
            </button>
          )}
          <a href={href("/")} class="brand-name">Microtask Engine</a>
        </div>
        <div class="top-right">
          <LangSwitch />
          {role && me && (
            <span class="who" data-testid="who">
              {me.login} <span class="role">({t(`role.${me.role}` as Key)})</span>
            </span>
          )}
          {role && (
            <button type="button" class="btn btn-link" onClick={() => void signOut().then(() => go("/login"))}>
              {t("nav.logout")}
            </button>
          )}
        </div>
      </header>
      <Banner />
      <div class="body">
        {showNav && (
          <div class={`nav-wrap${menuOpen ? " open" : ""}`}>
            <Nav role={role!} path={path.split("?")[0]} onPick={() => setMenuOpen(false)} />
          </div>
        )}
        <main id="main" tabIndex={-1}>
          <h1>{t(screen.title)}</h1>
          <Alert notice={bootNotice} />
          <Body params={params} key={path} />
        </main>
      </div>
      <footer class="foot">
        <a href={href("/help")}>{t("nav.help")}</a> · <a href={href("/status")}>{t("status.title")}</a>
        {role && <> · <a href={href("/legal")}>{t("legal.title")}</a></>}
        {role === "admin" && <> · <a href="/api/docs">{t("nav.api_docs")}</a></>}
      </footer>
    </div>
  );
}

window.addEventListener("unhandledrejection", (e) => {
  if (e.reason instanceof ApiError) e.preventDefault();
});

render(<App />, document.getElementById("app")!);
