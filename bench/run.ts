/**
 * Benchmarks against real services started here: a headless Temporal dev server on a free port
 * and PostgreSQL (DATABASE_URL's server, else embedded under .data/bench-<id>), a fresh migrated
 * database per bench. Every figure is compared with a baseline measured in the same run.
 *
 *   npm run bench                      # all
 *   npm run bench:csv-import           # one (also: bench:memory, bench:orchestration,
 *                                      #   bench:analysis, bench:scaling)
 *   BENCH_QUICK=1 npm run bench        # small sizes: 100k rows, 10,000 companies, 20,000 imports
 *   npm run bench -- throughput company-count backlog-drain   # the draining benches
 *
 * Prints a table and writes bench/results/<timestamp>.json.
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { createLogger } from "../adapters/logger.ts";
import { PROJECT_ROOT } from "../scripts/services/temporal.ts";
import { bundleWorkflows } from "../workers/workflow-bundle.ts";
import { analysisBench } from "./analysis.ts";
import { backlogDrainBench } from "./backlog-drain.ts";
import { companyCountBench } from "./company-count.ts";
import { csvImportBench } from "./csv-import.ts";
import { memoryBench } from "./memory.ts";
import { orchestrationBench } from "./orchestration.ts";
import { scalingBench } from "./scaling.ts";
import { startServices } from "./services.ts";
import type { BenchContext, ResultRow } from "./support.ts";
import { throughputBench } from "./throughput.ts";

const BENCHES: Record<string, (ctx: BenchContext) => Promise<void>> = {
  "csv-import": csvImportBench,
  memory: memoryBench,
  orchestration: orchestrationBench,
  analysis: analysisBench,
  scaling: scalingBench,
  throughput: throughputBench,
  "company-count": companyCountBench,
  "backlog-drain": backlogDrainBench,
};
/**
 * The whole suite's budget; a bench past it is abandoned. The draining benches (throughput,
 * company count, a 200,000-import backlog) take most of it at full size.
 */
const SUITE_BUDGET_MS = (process.env.BENCH_QUICK === "1" ? 40 : 150) * 60_000;

function machine() {
  const cpuModel =
    /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model;
  return {
    cpus: cpus().length,
    cpuModel,
    memoryMB: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value)
    ? ""
    : value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** One decimal for milliseconds and for small rates, where a whole number hides the difference. */
const digits = (unit: string, value: number | undefined) =>
  unit === "ms" || (unit.endsWith("/s") && Math.abs(value ?? 0) < 100) ? 1 : 0;

function table(rows: readonly ResultRow[]): string {
  const header = [
    "bench",
    "metric",
    "value",
    "unit",
    "baseline",
    "baseline value",
    "ratio",
    "target",
    "met",
  ];
  const body = rows.map((r) => [
    r.bench,
    r.metric,
    fmt(r.value, digits(r.unit, r.value)),
    r.unit,
    r.baseline ?? "",
    fmt(r.baselineValue, digits(r.unit, r.baselineValue)),
    r.ratio === undefined ? "" : `${fmt(r.ratio, 2)}x`,
    r.target ?? "",
    r.met === undefined ? "" : r.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join("\n");
}

async function main() {
  const requested = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const names = requested.length > 0 ? requested : Object.keys(BENCHES);
  for (const name of names) {
    if (!BENCHES[name])
      throw new Error(`unknown bench "${name}" (${Object.keys(BENCHES).join(", ")})`);
  }
  const large = process.env.BENCH_QUICK !== "1";
  const started = Date.now();
  const log = (line: string) =>
    process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  const results: ResultRow[] = [];
  const errors: { bench: string; error: string }[] = [];

  log(`machine: ${JSON.stringify(machine())}`);
  const services = await startServices(log);
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void services.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const workflowBundle = await bundleWorkflows(createLogger("warn", "bench-bundle"));
    log("workflows bundled");
    for (const name of names) {
      const bench = BENCHES[name];
      if (!bench || interrupted) continue;
      const remaining = SUITE_BUDGET_MS - (Date.now() - started);
      if (remaining <= 0) {
        errors.push({ bench: name, error: "skipped: suite time budget spent" });
        continue;
      }
      log(`${name}: start`);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          bench({ services, workflowBundle, large, log, record: (row) => results.push(row) }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`over the time budget (${remaining} ms)`)),
              remaining,
            );
          }),
        ]);
        log(`${name}: done`);
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        errors.push({ bench: name, error: message });
        log(`${name}: FAILED ${message}`);
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    await services.stop();
  }

  process.stdout.write(`\n${table(results)}\n`);
  for (const e of errors) process.stdout.write(`\n${e.bench}: ${e.error}\n`);
  const dir = join(PROJECT_ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, large, machine: machine(), benches: names, results, errors }, null, 2)}\n`,
  );
  process.stdout.write(`\nresults: ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  process.exit(errors.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
