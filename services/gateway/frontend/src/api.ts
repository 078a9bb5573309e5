// The JSON API under /api: the session token, the one error shape, the read-only mark.
import { store } from "./store";

export type Role = "worker" | "manager" | "admin";

export interface Me {
  user_id: string;
  login: string;
  role: Role;
  must_change_password: boolean;
  mfa_enabled: boolean;
  mfa_elevated: boolean;
  mfa_elevated_until: string | null;
  session_expires_at: string | null;
}

export interface PlatformStatus {
  status: string;
  read_only: boolean;
  read_only_reason: string;
  version: string;
  quick_login: boolean;
}

/** A refusal from the API (or the network) with its machine-readable code. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: unknown = null,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "mte.token";

// The token lives in sessionStorage: it survives a reload, not the closing of the tab.
export const tokenStore = store<string | null>(sessionStorage.getItem(TOKEN_KEY));
export const meStore = store<Me | null>(null);
export const statusStore = store<PlatformStatus | null>(null);

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  tokenStore.set(token);
  if (!token) meStore.set(null);
}

/** Why the last session ended on its own (shown on the login page), or null. */
export const sessionEndedStore = store<string | null>(null);

const NO_SESSION_PATHS = ["/auth/login", "/auth/login-link", "/dev/quick-login"];

export interface Options {
  body?: unknown;
  /** a raw body with its content type (uploads) */
  raw?: { text: string; type: string };
  headers?: Record<string, string>;
  /** the Response itself, for downloads */
  response?: boolean;
}

function noteReadOnly(r: Response): void {
  const on = r.headers.get("x-read-only") === "on";
  const s = statusStore.get();
  if (s && s.read_only !== on) void refreshStatus();
}

export async function request(method: string, path: string, opts: Options = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...(opts.headers || {}) };
  let body: BodyInit | undefined;
  if (opts.raw) {
    headers["Content-Type"] = opts.raw.type;
    body = opts.raw.text;
  } else if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  const token = tokenStore.get();
  if (token) headers.Authorization = `Bearer ${token}`;
  let r: Response;
  try {
    r = await fetch(`/api${path}`, { method, headers, body, credentials: "omit",
                                     referrerPolicy: "no-referrer" });
  } catch {
    throw new ApiError(0, "network", "the server could not be reached");
  }
  noteReadOnly(r);
  if (r.ok) return r;
  let data: { error?: { code?: string; message?: string; details?: unknown } } = {};
  try {
    data = await r.json();
  } catch {
    /* not JSON: keep the status */
  }
  const e = data.error || {};
  const err = new ApiError(r.status, e.code || `http_${r.status}`, e.message || r.statusText,
                           e.details ?? null);
  if (r.status === 401 && token && !NO_SESSION_PATHS.includes(path)) {
    sessionEndedStore.set(err.code);
    setToken(null);
  } else if (err.code === "password_change_required") {
    const me = meStore.get();
    if (me) meStore.set({ ...me, must_change_password: true });
  }
  throw err;
}

export async function api<T = unknown>(method: string, path: string, opts: Options = {}): Promise<T> {
  const r = await request(method, path, opts);
  if (r.status === 204) return undefined as T;
  return (await r.json()) as T;
}

export const get = <T,>(path: string) => api<T>("GET", path);
export const post = <T,>(path: string, body?: unknown, headers?: Record<string, string>) =>
  api<T>("POST", path, { body, headers });

export async function refreshStatus(): Promise<PlatformStatus | null> {
  try {
    const s = await api<PlatformStatus>("GET", "/status");
    statusStore.set(s);
    return s;
  } catch {
    return statusStore.get();
  }
}

export async function loadMe(): Promise<Me | null> {
  if (!tokenStore.get()) {
    meStore.set(null);
    return null;
  }
  try {
    const me = await api<Me>("GET", "/auth/me");
    meStore.set(me);
    return me;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function signIn(token: string): Promise<Me | null> {
  sessionEndedStore.set(null);
  setToken(token);
  return loadMe();
}

export async function signOut(): Promise<void> {
  try {
    await api("POST", "/auth/logout");
  } catch {
    /* the session may be gone already */
  }
  setToken(null);
}
