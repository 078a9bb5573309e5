// Names for ids on staff screens: pools (every manager may list them) and, for admins,
// users' logins.
import { get, meStore } from "./api";
import { shortId } from "./format";
import type { Page, PoolView, UserRow } from "./types";

export interface Names { pool: (id: string | null | undefined) => string; user: (id: string | null | undefined) => string; pools: PoolView[] }

export async function loadNames(): Promise<Names> {
  const admin = meStore.get()?.role === "admin";
  const [pools, users] = await Promise.all([
    get<Page<PoolView>>("/pools?limit=500"),
    admin ? get<Page<UserRow>>("/admin/users?limit=500") : Promise.resolve(null),
  ]);
  const poolName = new Map(pools.items.map((p) => [p.pool_id, p.name]));
  const login = new Map((users?.items ?? []).map((u) => [u.user_id, u.login]));
  return {
    pools: pools.items,
    pool: (id) => (id ? poolName.get(id) ?? shortId(id) : "—"),
    user: (id) => (id ? login.get(id) ?? shortId(id) : "—"),
  };
}
