// Microtask Engine web UI: vanilla JS, talks only to the JSON API under /api.
// The session token lives in sessionStorage (gone with the tab); a login-link token
// arrives in the URL fragment, is exchanged once and wiped from the address bar.
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;

function token() { return sessionStorage.getItem("mte_token"); }
function setToken(t) { t ? sessionStorage.setItem("mte_token", t) : sessionStorage.removeItem("mte_token"); }
function say(text) { $("msg").textContent = text || ""; }

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers["Authorization"] = "Bearer " + token();
  const r = await fetch("/api" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                         credentials: "omit", referrerPolicy: "no-referrer" });
  $("banner").hidden = r.headers.get("X-Read-Only") !== "on";
  const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = (data && data.error) || { code: "http_" + r.status, message: r.statusText };
    if (e.code === "password_change_required") show("password-view");
    if (r.status === 401 && path !== "/auth/login") { setToken(null); render(); }
    throw new Error(e.message + " (" + e.code + ")");
  }
  return data;
}

function show(...ids) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = !ids.includes(s.id);
}

function form(id, handler) {
  $(id).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(new FormData(ev.target).entries());
    try { say(""); await handler(values, ev); } catch (e) { say(e.message); }
  });
}

async function exchangeLinkToken() {
  const m = /(?:^|&)token=([^&]+)/.exec(location.hash.slice(1));
  if (!m) return;
  history.replaceState(null, "", location.pathname);  // wipe the token from the address bar
  try {
    const r = await api("POST", "/auth/login-link", { token: decodeURIComponent(m[1]) });
    setToken(r.token);
  } catch (e) { say("This login link is invalid or was already used."); }
}

async function render() {
  const status = await fetch("/api/status").then((r) => r.json()).catch(() => ({}));
  $("banner").hidden = !status.read_only;
  if (!token()) { me = null; $("who").textContent = ""; $("logout").hidden = true; show("login-view"); return; }
  try { me = await api("GET", "/auth/me"); } catch (e) { show("login-view"); return; }
  $("who").textContent = me.login + " (" + me.role + ")";
  $("logout").hidden = false;
  if (me.must_change_password) { show("password-view"); return; }
  if (me.role === "worker") { show("worker-view"); loadWorker(); }
  else if (me.role === "manager") { show("manager-view"); loadReviews(); }
  else { show("admin-view", "manager-view"); loadAdmin(); loadReviews(); }
}

function li(text, buttonLabel, onClick) {
  const item = document.createElement("li");
  item.textContent = text + " ";
  if (buttonLabel) {
    const b = document.createElement("button");
    b.textContent = buttonLabel;
    b.addEventListener("click", async () => { try { say(""); await onClick(); } catch (e) { say(e.message); } });
    item.appendChild(b);
  }
  return item;
}

let currentAssignment = null;

async function loadWorker() {
  try {
    const b = await api("GET", "/worker/balance");
    $("balance").textContent = (b.balances || []).map((x) => JSON.stringify(x)).join(", ") || "0";
  } catch (e) { $("balance").textContent = "unavailable"; }
  const list = $("pools");
  list.replaceChildren();
  try {
    const pools = await api("GET", "/worker/pools");
    for (const p of pools.items || []) {
      list.appendChild(li((p.name || p.pool_id) + " — " + p.available_tasks + " tasks available", "Take", async () => {
        currentAssignment = await api("POST", "/worker/tasks/take", { pool_id: p.pool_id });
        $("assignment").textContent = JSON.stringify(currentAssignment, null, 2);
        $("submit-form").hidden = false;
      }));
    }
  } catch (e) { list.appendChild(li("pools unavailable: " + e.message)); }
}

async function loadReviews() {
  const list = $("reviews");
  list.replaceChildren();
  try {
    const pending = await api("GET", "/review/pending");
    for (const a of pending.items || []) {
      list.appendChild(li(a.assignment_id + " " + JSON.stringify(a.answers || {}), "Accept", async () => {
        await api("POST", "/review/submissions/" + a.assignment_id + "/lock");
        await api("POST", "/review/submissions/" + a.assignment_id + "/accept", {});
        loadReviews();
      }));
    }
  } catch (e) { list.appendChild(li("reviews unavailable: " + e.message)); }
}

async function loadAdmin() {
  try {
    const em = await api("GET", "/admin/emergency");
    $("emergency-state").textContent = em.enabled ? "ON — " + em.reason : "off";
  } catch (e) { $("emergency-state").textContent = e.message; }
  const body = $("users");
  body.replaceChildren();
  const users = await api("GET", "/admin/users?limit=200");
  for (const u of users.items) {
    const tr = document.createElement("tr");
    for (const v of [u.login, u.role, u.mfa_enabled ? "yes" : "no"]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.textContent = "Login link";
    b.addEventListener("click", async () => {
      try { const r = await api("POST", "/admin/users/" + u.user_id + "/login-link");
            $("link-out").textContent = r.url + "\n(expires " + r.expires_at + ")"; } catch (e) { say(e.message); }
    });
    td.appendChild(b); tr.appendChild(td); body.appendChild(tr);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  form("login-form", async (v) => {
    const r = await api("POST", "/auth/login", { login: v.login, password: v.password });
    setToken(r.token); render();
  });
  form("password-form", async (v) => {
    const r = await api("POST", "/auth/password", v);
    setToken(r.token); say("Password changed."); render();
  });
  form("submit-form", async (v) => {
    let solution;
    try { solution = JSON.parse(v.solution); } catch (e) { throw new Error("the answer is not valid JSON"); }
    const a = currentAssignment.assignment || currentAssignment;
    await api("POST", "/worker/assignments/" + a.assignment_id + "/submit", { answers: solution });
    currentAssignment = null; $("assignment").textContent = "none"; $("submit-form").hidden = true;
    say("Submitted."); loadWorker();
  });
  form("stepup-form", async (v) => {
    const r = await api("POST", "/auth/mfa/step-up", { code: v.code });
    say("Confirmed until " + r.mfa_elevated_until);
  });
  form("emergency-form", async (v, ev) => {
    const enabled = ev.submitter && ev.submitter.value === "1";
    await api("POST", "/admin/emergency", { enabled, reason: v.reason });
    loadAdmin();
  });
  form("mfa-confirm-form", async (v) => {
    const r = await api("POST", "/auth/mfa/confirm", { code: v.code });
    $("recovery").textContent = "Recovery codes (shown once, keep them safe):\n" + r.recovery_codes.join("\n");
  });
  form("user-form", async (v) => {
    const r = await api("POST", "/admin/users", { login: v.login, role: v.role });
    $("user-created").textContent = "Created " + r.login + ". Temporary password: " + r.temporary_password;
    loadAdmin();
  });
  $("mfa-setup").addEventListener("click", async () => {
    try {
      const r = await api("POST", "/auth/mfa/setup");
      $("mfa-qr").src = "data:image/png;base64," + r.qr_png_base64;
      $("mfa-box").hidden = false;
    } catch (e) { say(e.message); }
  });
  $("refresh-balance").addEventListener("click", loadWorker);
  $("refresh-reviews").addEventListener("click", loadReviews);
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/auth/logout"); } catch (e) { /* already gone */ }
    setToken(null); render();
  });
  await exchangeLinkToken();
  render();
});
