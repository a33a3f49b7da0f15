/**
 * The floors of the code base, enforced: each folder imports only from its own floor or below,
 * so the arrows never run back up (docs/architecture.md draws them). Migration tooling is
 * reachable only from the migrate command, dev tooling, tests and benches.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../adapters/paths.ts";

/** Lower number = lower floor. A folder may import its own floor and any floor below. */
const FLOORS: Record<string, number> = {
  domain: 0,
  adapters: 1,
  workflows: 2,
  activities: 2,
  "control-plane": 3,
  workers: 4,
  api: 4,
  platform: 5,
};
/** Folders on one floor that still must not see each other. */
const APART: [string, string][] = [["workers", "api"]];
/** The migration tooling: adapters/db/migrations.ts and the migrations-*.ts modules it is built from. */
const MIGRATIONS = "adapters/db/migrations";
const isMigrationTooling = (path: string) => path.startsWith(MIGRATIONS);

function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(PROJECT_ROOT, folder))) {
    const path = join(folder, name);
    if (name === "generated") continue;
    if (statSync(join(PROJECT_ROOT, path)).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(name)) out.push(path);
  }
  return out;
}

function relativeImports(file: string): string[] {
  const text = readFileSync(join(PROJECT_ROOT, file), "utf8");
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.\.?\/[^"]+)"/g)].map(
    (m) => m[1] ?? "",
  );
  return specs.map((spec) => normalize(join(dirname(file), spec)));
}

const topFolder = (path: string) => path.split("/")[0] ?? "";

describe("architecture", () => {
  const files = Object.keys(FLOORS).flatMap(sourceFiles);

  it("finds the code it checks", () => {
    expect(files.length).toBeGreaterThan(80);
    for (const folder of Object.keys(FLOORS)) {
      expect(files.some((f) => topFolder(f) === folder)).toBe(true);
    }
  });

  it("has no import from a lower floor to a higher one", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = topFolder(file);
      for (const target of relativeImports(file)) {
        const to = topFolder(target);
        const toFloor = FLOORS[to];
        if (toFloor === undefined) {
          upward.push(`${file} -> ${relative(".", target)} (outside the layered folders)`);
        } else if (toFloor > (FLOORS[from] ?? 0)) {
          upward.push(`${file} -> ${target}`);
        } else if (APART.some(([a, b]) => (from === a && to === b) || (from === b && to === a))) {
          upward.push(`${file} -> ${target} (side by side)`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it("keeps workflow code on pure modules: no adapters, no Node built-ins", () => {
    const offending: string[] = [];
    for (const file of files.filter((f) => topFolder(f) === "workflows")) {
      const text = readFileSync(join(PROJECT_ROOT, file), "utf8");
      if (/from\s+"node:/.test(text)) offending.push(`${file}: node built-in`);
      for (const target of relativeImports(file)) {
        const to = topFolder(target);
        const typeOnly = new RegExp(`import type [^;]*"[^"]*${target.split("/").pop()}"`).test(
          text,
        );
        if (to === "adapters" || (to === "activities" && !typeOnly))
          offending.push(`${file} -> ${target}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it("loads migration tooling only from the migrate command, dev tooling, tests and benches", () => {
    expect(files.filter(isMigrationTooling)).toContain("adapters/db/migrations.ts");
    const importers = files.filter(
      (f) => !isMigrationTooling(f) && relativeImports(f).some(isMigrationTooling),
    );
    expect(importers).toEqual([]);
  });
});
