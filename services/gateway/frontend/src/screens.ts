// Every screen registers itself: a file in screens/ exporting a default Screen is all it
// takes to add one (plus its messages).
import type { Screen } from "./router";

const modules = import.meta.glob<{ default: Screen; extra?: Screen[] }>("./screens/*.tsx", { eager: true });

export const SCREENS: Screen[] = Object.values(modules).flatMap((m) => [m.default, ...(m.extra ?? [])])
  .sort((a, b) => a.path.localeCompare(b.path));
