// Messages in Russian and English. Keys are the English catalogue's (so a key missing
// there fails the type check); tests/browser/test_messages.py checks both have the same
// keys and every plural form each language needs.
import en from "./en.json";
import ru from "./ru.json";
import { store, useStore } from "../store";

export type Lang = "ru" | "en";
export type Key = keyof typeof en;
type Message = string | Partial<Record<Intl.LDMLPluralRule, string>>;
type Params = Record<string, string | number>;

const catalogs: Record<Lang, Record<string, Message>> = { en, ru };
export const LANGS: Lang[] = ["ru", "en"];
const STORAGE_KEY = "mte.lang";

function detect(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "ru" || saved === "en") return saved;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const l of wanted) {
    const base = (l || "").toLowerCase().split("-")[0];
    if (base === "ru") return "ru";
    if (base === "en") return "en";
  }
  return "en";
}

export const langStore = store<Lang>(detect());
document.documentElement.lang = langStore.get();

export function setLang(lang: Lang): void {
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  langStore.set(lang);
}

export function lang(): Lang {
  return langStore.get();
}

/** The BCP 47 locale used for numbers, money and dates. */
export function locale(): string {
  return lang() === "ru" ? "ru-RU" : "en-US";
}

function fill(text: string, params?: Params): string {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) =>
    name in params ? String(params[name]) : m);
}

/** The message ``key`` with ``{name}`` filled in; plural messages choose by ``params.n``. */
export function t(key: Key, params?: Params): string {
  const msg = catalogs[lang()][key] ?? catalogs.en[key];
  if (msg === undefined) return key;
  if (typeof msg === "string") return fill(msg, params);
  const n = Number(params?.n ?? 0);
  const form = new Intl.PluralRules(locale()).select(n);
  const nText = new Intl.NumberFormat(locale()).format(n);
  return fill(msg[form] ?? msg.other ?? "", { ...params, n: nText });
}

/** Whether ``key`` is a message (for keys built from API codes). */
export function has(key: string): key is Key {
  return key in catalogs.en;
}

/** Re-render the calling component when the language changes. */
export function useLang(): Lang {
  return useStore(langStore);
}
