// Live updates: the gateway's server-sent events (GET /api/live), read with fetch so the
// session token travels in the Authorization header. Each event names a view that changed;
// screens that show it load again (useLoad's topics).
import { refreshStatus, tokenStore } from "./api";
import { store } from "./store";

export type Topic = "credits" | "payouts" | "decisions" | "assignments" | "restrictions"
  | "review_queue" | "emergency" | "tickets" | "chat";

export const liveStore = store<Partial<Record<Topic, number>>>({});
export const liveConnected = store(false);

let controller: AbortController | null = null;

function bump(topic: Topic): void {
  liveStore.update((s) => ({ ...s, [topic]: (s[topic] ?? 0) + 1 }));
  if (topic === "emergency") void refreshStatus();
}

async function readStream(token: string, signal: AbortSignal): Promise<void> {
  const r = await fetch("/api/live", {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
    credentials: "omit", signal,
  });
  if (!r.ok || !r.body) throw new Error(`live ${r.status}`);
  liveConnected.set(true);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (\w+)$/m.exec(block)?.[1];
      if (event && event !== "ready") bump(event as Topic);
    }
  }
}

async function loop(token: string, signal: AbortSignal): Promise<void> {
  let wait = 1000;
  while (!signal.aborted) {
    try {
      await readStream(token, signal);
      wait = 1000;
    } catch {
      wait = Math.min(wait * 2, 30000);
    }
    liveConnected.set(false);
    if (signal.aborted) return;
    await new Promise((ok) => setTimeout(ok, wait));
    // a stream that ended may have missed hints: let every open view catch up
    for (const topic of ["credits", "payouts", "decisions", "review_queue", "tickets", "chat"] as Topic[]) bump(topic);
  }
}

export function startLive(): void {
  tokenStore.subscribe(restart);
  restart(tokenStore.get());
}

function restart(token: string | null): void {
  controller?.abort();
  controller = null;
  if (!token) return;
  controller = new AbortController();
  void loop(token, controller.signal);
}
