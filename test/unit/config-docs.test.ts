/**
 * docs/configuration.md is the reference of every environment variable: this fails when a
 * variable the configuration schema reads, or one any source file reads from process.env, is
 * missing there, or when a documented default is not the schema's.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ENV_VARS, envSchema } from "../../adapters/config.ts";
import { PROJECT_ROOT } from "../../adapters/paths.ts";

const DOC = readFileSync(join(PROJECT_ROOT, "docs", "configuration.md"), "utf8");

/** The cells of every Markdown table row, trimmed (column padding is the formatter's). */
const ROWS = DOC.split("\n")
  .filter((line) => line.startsWith("|"))
  .map((line) =>
    line
      .split("|")
      .slice(1, -1)
      .map((cell) => cell.trim()),
  );

/** The cells of the row whose first cell names `name` (one row per schema variable). */
function rowOf(name: string): string[] | undefined {
  return ROWS.find((cells) => cells[0] === `\`${name}\``);
}

const SOURCE_FOLDERS = [
  "domain",
  "adapters",
  "workflows",
  "activities",
  "control-plane",
  "workers",
  "api",
  "platform",
  "scripts",
  "bench",
  "openai-stand-in",
  "test",
];

function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(PROJECT_ROOT, folder))) {
    const path = join(folder, name);
    if (name === "generated" || name === "fixtures") continue;
    if (statSync(join(PROJECT_ROOT, path)).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(name)) out.push(path);
  }
  return out;
}

/** Names read as a property or a quoted index of process.env, plus the stand-in's flag fallbacks. */
function variablesReadBySource(): Map<string, string> {
  const found = new Map<string, string>();
  const reads = /process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*"([A-Z][A-Z0-9_]*)"\s*\])/g;
  const standIn = /"(OPENAI_STAND_IN_[A-Z0-9_]+)"/g;
  for (const file of [...SOURCE_FOLDERS.flatMap(sourceFiles), "prisma.config.ts"]) {
    const text = readFileSync(join(PROJECT_ROOT, file), "utf8");
    for (const match of text.matchAll(reads)) found.set(match[1] ?? match[2] ?? "", file);
    for (const match of text.matchAll(standIn)) found.set(match[1] ?? "", file);
  }
  found.delete("");
  return found;
}

describe("docs/configuration.md", () => {
  it("has a row for every variable the configuration schema reads", () => {
    expect(ENV_VARS.length).toBeGreaterThan(90);
    const missing = ENV_VARS.filter((name) => rowOf(name) === undefined);
    expect(missing, "variables without a row in docs/configuration.md").toEqual([]);
  });

  it("states each schema default as the schema has it", () => {
    const wrong: string[] = [];
    for (const name of ENV_VARS) {
      const fallback = envSchema.shape[name].parse(undefined);
      if (!["string", "number", "boolean"].includes(typeof fallback)) continue;
      const defaultCell = rowOf(name)?.[1] ?? "";
      if (!defaultCell.includes(`\`${String(fallback)}\``)) {
        wrong.push(`${name}: default \`${String(fallback)}\`, documented as ${defaultCell}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("states each whole-number range as the schema checks it", () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const name of ENV_VARS) {
      const range = /^int (-?\d+)–(\d+)$/.exec(rowOf(name)?.[2] ?? "");
      if (!range) continue;
      checked++;
      const [min, max] = [Number(range[1]), Number(range[2])];
      const accepts = (value: number) => envSchema.shape[name].safeParse(String(value)).success;
      if (!accepts(min) || accepts(min - 1) || !accepts(max) || accepts(max + 1)) {
        wrong.push(`${name}: documented as ${min}–${max}`);
      }
    }
    expect(checked).toBeGreaterThan(40);
    expect(wrong).toEqual([]);
  });

  it("names every variable a source file reads from process.env", () => {
    const read = variablesReadBySource();
    // The scan finds what the platform reads outside the schema, not only the schema itself.
    expect(read.has("DATABASE_URL")).toBe(true);
    expect(read.has("TEMPORAL_CLI_PATH")).toBe(true);
    expect(read.has("OPENAI_STAND_IN_PORT")).toBe(true);
    const missing = [...read]
      .filter(([name]) => !DOC.includes(`\`${name}\``))
      .map(([name, file]) => `${name} (${file})`);
    expect(missing, "variables read with process.env but not in docs/configuration.md").toEqual([]);
  });
});
