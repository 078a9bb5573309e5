// Every refusal as a sentence in the viewer's language: the API's code picks the message
// (error.<code>), its details fill it in; an unknown code falls back to the API's own text.
import { ApiError } from "./api";
import { dateTime, clock, money } from "./format";
import { has, t, type Key } from "./i18n";

type Details = Record<string, unknown>;

function details(e: ApiError): Details {
  return e.details && typeof e.details === "object" && !Array.isArray(e.details)
    ? (e.details as Details) : {};
}

export function errorText(e: unknown): string {
  if (!(e instanceof ApiError)) return t("error.unknown");
  const d = details(e);
  switch (e.code) {
    case "take_limit":
      return d.limit === "max_active"
        ? t("error.take_limit.max_active", { n: Number(d.max ?? 0) })
        : t("error.take_limit.min_pause", { left: clock(Math.ceil(Number(d.retry_after_s ?? 0))) });
    case "restricted":
      return d.until ? t("error.restricted.until", { until: dateTime(String(d.until)) })
                     : t("error.restricted");
    case "read_only":
      return d.reason ? `${t("error.read_only")} ${t("common.reason")}: ${String(d.reason)}`
                      : t("error.read_only");
    case "locked_by_other":
      return t("error.locked_by_other", { until: dateTime(String(d.until ?? "")) });
    case "too_many_attempts":
      return t("error.too_many_attempts");
    case "chat_rate_limited":
      return t("error.chat_rate_limited", { left: clock(Math.ceil(Number(d.retry_after_s ?? 0))) });
    case "chat_muted":
      return d.muted_until ? t("error.chat_muted.until", { until: dateTime(String(d.muted_until)) })
                           : t("error.chat_muted");
    case "rule_incomplete":
      return t("error.rule_incomplete");
    case "below_fair_pay_floor": {
      const cur = String(d.currency ?? "");
      return t("error.below_fair_pay_floor", {
        estimate: money(Number(d.estimate_minor_per_hour ?? 0), cur),
        floor: money(Number(d.floor_minor_per_hour ?? 0), cur),
      });
    }
    case "fair_pay_unknown":
      return t("error.fair_pay_unknown", { floor: money(Number(d.floor_minor_per_hour ?? 0), String(d.currency ?? "")) });
    default: {
      const key = `error.${e.code}`;
      if (has(key)) return t(key as Key);
      if (e.status === 0) return t("error.network");
      return e.message || t("error.unknown");
    }
  }
}

/** A field check's English text ("must be at least 3 characters") in the viewer's language. */
export function fieldText(error: string): string {
  const rules: [RegExp, Key][] = [
    [/^required$|^Field required$/i, "field.required"],
    [/^unknown field$/i, "field.unknown"],
    [/^must be an integer/i, "field.integer"],
    [/^must be a number/i, "field.number"],
    [/^must be true or false/i, "field.boolean"],
    [/^must be valid JSON/i, "field.json"],
    [/^must be an? (http|url|link)/i, "field.url"],
    [/^must be one of (.*)$/i, "field.one_of"],
    [/^must be at least (\S+) characters?/i, "field.min_length"],
    [/^must be at most (\S+) characters?/i, "field.max_length"],
    [/^must match (.*)$/i, "field.pattern"],
    [/^must be at least (\S+)$/i, "field.min_value"],
    [/^must be at most (\S+)$/i, "field.max_value"],
    [/^expected (\d+) columns/i, "field.columns"],
  ];
  for (const [re, key] of rules) {
    const m = re.exec(error.trim());
    if (m) return t(key, { value: m[1] ?? "" });
  }
  return error;
}

/** Per-field messages of a refusal: ``invalid_answers`` ({field, error}) and schema errors
 * ({loc: ["body", name, ...], msg, type}). */
export function fieldErrors(e: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(e instanceof ApiError) || !Array.isArray(e.details)) return out;
  for (const item of e.details as Record<string, unknown>[]) {
    if (typeof item?.field === "string") {
      out[item.field] = fieldText(String(item.error ?? ""));
    } else if (Array.isArray(item?.loc)) {
      const loc = (item.loc as unknown[]).filter((p) => p !== "body");
      const name = loc.map(String).join(".");
      const type = String(item.type ?? "");
      out[name || "_"] = type === "missing" ? t("field.required")
        : type.startsWith("string_too") || type.startsWith("too_")
          ? t("field.length") : fieldText(String(item.msg ?? ""));
    }
  }
  return out;
}
