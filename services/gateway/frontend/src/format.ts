// Money, dates and numbers in the viewer's language and time zone.
import { locale } from "./i18n";

const digitsCache = new Map<string, number>();

/** Minor units per major unit of a currency, as Intl knows it (RUB 2, JPY 0). */
export function fractionDigits(currency: string): number {
  let d = digitsCache.get(currency);
  if (d === undefined) {
    try {
      d = new Intl.NumberFormat("en", { style: "currency", currency })
        .resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      d = 2;
    }
    digitsCache.set(currency, d);
  }
  return d;
}

/** ``123456`` RUB -> "1 234,56 ₽" (ru) or "RUB 1,234.56" (en). */
export function money(minor: number, currency: string, opts: { signed?: boolean } = {}): string {
  const digits = fractionDigits(currency);
  const value = minor / 10 ** digits;
  try {
    return new Intl.NumberFormat(locale(), {
      style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
      signDisplay: opts.signed ? "exceptZero" : "auto",
    }).format(value);
  } catch {
    return `${value.toFixed(digits)} ${currency}`;
  }
}

/** Major units as typed ("1 234,5" or "1234.50") -> minor units, or null if not money. */
export function parseMoney(text: string, currency: string): number | null {
  const digits = fractionDigits(currency);
  const clean = text.replace(/[\s\u00a0\u202f]/g, "").replace(",", ".");
  const m = /^(\d{1,13})(?:\.(\d*))?$/.exec(clean);
  if (!m) return null;
  const frac = m[2] ?? "";
  if (frac.length > digits) return null;
  return Number(m[1]) * 10 ** digits + Number((frac + "0".repeat(digits)).slice(0, digits) || 0);
}

/** Minor units -> the major-unit text a form field starts with ("150.5" -> "150,50"). */
export function moneyInput(minor: number, currency: string): string {
  const digits = fractionDigits(currency);
  return new Intl.NumberFormat(locale(), {
    minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false,
  }).format(minor / 10 ** digits);
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(d);
}

export function number(n: number, maxDigits = 2): string {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: maxDigits }).format(n);
}

export function percent(fraction: number): string {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 })
    .format(fraction);
}

/** Seconds -> "1:05:09" / "04:59" for countdowns. */
export function clock(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A shortened id for people to tell records apart ("3f9a…c21b"). */
export function shortId(id: string | null | undefined): string {
  if (!id) return "—";
  return id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-4)}` : id;
}
