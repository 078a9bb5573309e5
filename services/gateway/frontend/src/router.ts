// Hash routes ("#/pools", "#/review/<id>"); "#token=..." is a login link, not a route.
import type { ComponentType } from "preact";
import type { Role } from "./api";
import type { Key } from "./i18n";
import { store } from "./store";

export type NavGroup = "work" | "money" | "review" | "setup" | "owner" | "help";

export interface Screen {
  /** "/pools", "/review/:id" */
  path: string;
  /** who may open it: roles, "any" (logged in) or "public" (also logged out) */
  access: Role[] | "any" | "public";
  title: Key;
  /** shown in the menu of these roles, in this group and order */
  nav?: { group: NavGroup; order: number; roles?: Role[] };
  component: ComponentType<{ params: Record<string, string> }>;
}

function currentPath(): string {
  const h = location.hash;
  return h.startsWith("#/") ? h.slice(1) : "/";
}

export const pathStore = store<string>(currentPath());
window.addEventListener("hashchange", () => pathStore.set(currentPath()));

export function go(path: string): void {
  if (currentPath() === path) pathStore.set(path);
  else location.hash = `#${path}`;
}

export function href(path: string): string {
  return `#${path}`;
}

/** The screen for ``path`` and its parameters, or null. */
export function match(screens: Screen[], path: string):
    { screen: Screen; params: Record<string, string> } | null {
  const parts = path.split("?")[0].split("/").filter(Boolean);
  for (const screen of screens) {
    const want = screen.path.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    if (want.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] =
        decodeURIComponent(parts[i])), true) : w === parts[i]))) {
      return { screen, params };
    }
  }
  return null;
}

export function allowed(screen: Screen, role: Role | null): boolean {
  if (screen.access === "public") return true;
  if (!role) return false;
  return screen.access === "any" || screen.access.includes(role);
}
