import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@temporalio/client";
import { createDatabase, type Database } from "../adapters/db/client.ts";
import { qualifiedName } from "../domain/scheduler-id.ts";
import { PROJECT_ROOT } from "../scripts/services/temporal.ts";
import { type CsvSource, startCsvSource } from "./child-services.ts";
import { connectClient, deleteSchedules, triggerAndTime } from "./scheduler-runs.ts";
import { benchEnv } from "./services.ts";
import type { BenchContext } from "./support.ts";
import { waitForPollers } from "./worker-processes.ts";

const IDLE_TARGET_MB = 250;
const IMPORT_TARGET_MB = 300;
/**
 * V8 collects lazily when the heap limit is far away (it is ~4 GB on a 24 GB machine), so a
 * long import leaves garbage in RSS: measured with Node's default limit and with the limit the
 * deployment files set for workers (NODE_OPTIONS in docker-compose.yml and deploy/k8s).
 */
const HEAP_SETTINGS = [
  { label: "default heap", nodeOptions: "" },
  { label: "NODE_OPTIONS=--max-old-space-size=256", nodeOptions: "--max-old-space-size=256" },
];
/**
 * The same worker run two ways: the compiled build as `npm start` and the image run it
 * (`node dist/...`, built here by `npm run build`), and the sources under tsx (`npm run worker`).
 */
const RUNTIMES = [
  { label: "compiled", args: [join("dist", "workers", "main.js"), "--scheduler=csv-import"] },
  { label: "tsx", args: ["--import", "tsx", join("workers", "main.ts"), "--scheduler=csv-import"] },
] as const;
type Runtime = (typeof RUNTIMES)[number]["label"];
const STARTUP_TIMEOUT_MS = 120_000;
/** Idle is sampled this long once the worker polls: startup garbage has had time to go. */
const IDLE_SETTLE_MS = 5_000;

/** VmRSS and VmHWM of a process, in MB (Linux /proc). */
function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface WorkerMemory {
  /** RSS once polling and settled, MB. */
  idle: number;
  /** VmHWM after the import (the high-water mark of the whole life), MB. */
  hwm: number;
  /** Highest RSS sampled every 50 ms during the import, MB. */
  sampledPeak: number;
  importMs: number;
}

/**
 * One csv-import worker in a child process, idle and then importing one company's `rows`-row
 * CSV; a fresh child per case, so its high-water mark belongs to that case alone.
 */
export async function measureWorker(options: {
  runtime: Runtime;
  nodeOptions: string;
  rows: number;
  databaseUrl: string;
  db: Database;
  temporal: Client;
  temporalAddress: string;
  source: CsvSource;
  env?: Record<string, string>;
}): Promise<WorkerMemory> {
  const { db, temporal, rows } = options;
  const region = `m${randomBytes(3).toString("hex")}`;
  const scheduleId = qualifiedName("csv-import", region);
  await db.sessionImport.deleteMany();
  await db.company.deleteMany();
  await db.company.create({
    data: { name: `Memory ${rows}`, csvUrl: options.source.urlFor(`m${rows}`, rows) },
  });
  const runtime = RUNTIMES.find((r) => r.label === options.runtime);
  if (!runtime) throw new Error(`unknown runtime ${options.runtime}`);
  const child = spawn(process.execPath, [...runtime.args], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      NODE_OPTIONS: options.nodeOptions,
      ...benchEnv(options.databaseUrl, options.temporalAddress, region, {
        WORKER_HEALTH_PORT: "0",
        LOG_LEVEL: "error",
        ...options.env,
      }),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("worker child did not start");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    // Ready when its schedule exists (reconciled) and its worker polls the task queue.
    await waitForPollers(temporal, scheduleId, {
      kind: "workflow",
      count: 1,
      timeoutMs: STARTUP_TIMEOUT_MS,
      exited: () => child.exitCode !== null,
    });
    await sleep(IDLE_SETTLE_MS);
    const idle = memoryOf(pid)?.rss ?? Number.NaN;

    let sampledPeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        sampledPeak = Math.max(sampledPeak, memoryOf(pid)?.rss ?? 0);
        await sleep(50);
      }
    })();
    const run = await triggerAndTime(temporal, db, scheduleId, 600_000);
    sampling = false;
    await sampler;
    const hwm = memoryOf(pid)?.hwm ?? sampledPeak;
    if (run.outcome !== "SUCCEEDED") throw new Error(`memory run ${run.outcome}`);
    const stored = await db.sessionImport.count();
    if (stored !== rows) throw new Error(`memory run stored ${stored}/${rows} rows`);
    return { idle, hwm, sampledPeak, importMs: run.ms };
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
    await deleteSchedules(temporal, [scheduleId]);
  }
}

/** `npm run build`: the compiled worker measured is the one built from this checkout. */
function build(ctx: BenchContext): void {
  const started = Date.now();
  const result = spawnSync("npm", ["run", "build"], { cwd: PROJECT_ROOT, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stderr}`);
  ctx.log(`  npm run build: ${Date.now() - started} ms`);
}

/**
 * The csv-import worker, compiled and under tsx, with Node's default heap limit and with the
 * deployment's cap: idle RSS, and the peak while importing 100k and 1M rows.
 */
export async function memoryBench(ctx: BenchContext): Promise<void> {
  const sizes = ctx.large ? [100_000, 1_000_000] : [100_000];
  build(ctx);
  const source = await startCsvSource();
  const databaseUrl = await ctx.services.freshDatabase("memory");
  const db = createDatabase(databaseUrl, { poolSize: 2 });
  const temporal = await connectClient(ctx.services.temporalAddress);
  const results = new Map<string, WorkerMemory>();
  const key = (runtime: Runtime, heap: string, rows: number) => `${runtime}|${heap}|${rows}`;
  try {
    for (const heap of HEAP_SETTINGS) {
      for (const rows of sizes) {
        for (const runtime of RUNTIMES) {
          const m = await measureWorker({
            runtime: runtime.label,
            nodeOptions: heap.nodeOptions,
            rows,
            databaseUrl,
            db,
            temporal: temporal.client,
            temporalAddress: ctx.services.temporalAddress,
            source,
          });
          results.set(key(runtime.label, heap.label, rows), m);
          ctx.log(
            `  memory ${runtime.label}, ${rows} rows, ${heap.label}: idle ${m.idle.toFixed(0)} MB, peak (VmHWM) ${m.hwm.toFixed(0)} MB, sampled ${m.sampledPeak.toFixed(0)} MB, ${m.importMs} ms`,
          );
        }
      }
    }
  } finally {
    await temporal.close();
    await db.$disconnect();
    await source.close();
  }

  const largest = sizes[sizes.length - 1] ?? 100_000;
  for (const heap of HEAP_SETTINGS) {
    const compiledBig = results.get(key("compiled", heap.label, largest));
    const tsxBig = results.get(key("tsx", heap.label, largest));
    const compiledSmall = results.get(key("compiled", heap.label, 100_000));
    if (!compiledBig || !tsxBig || !compiledSmall) continue;
    const idle = compiledSmall.idle;
    const tsxIdle = results.get(key("tsx", heap.label, 100_000))?.idle ?? Number.NaN;
    const rate = (m: WorkerMemory) => ((largest / m.importMs) * 1000).toFixed(0);
    ctx.record({
      bench: "memory",
      metric: `compiled worker idle RSS, ${heap.label}`,
      value: idle,
      unit: "MB",
      baseline: "the same worker under tsx",
      baselineValue: tsxIdle,
      ratio: idle / tsxIdle,
      target: `< ${IDLE_TARGET_MB} MB`,
      met: idle < IDLE_TARGET_MB,
      note: `node dist/workers/main.js --scheduler=csv-import, polling, ${IDLE_SETTLE_MS / 1000} s settled`,
    });
    ctx.record({
      bench: "memory",
      metric: `compiled worker peak RSS, ${largest} rows, ${heap.label}`,
      value: compiledBig.hwm,
      unit: "MB",
      baseline: "the same import under tsx",
      baselineValue: tsxBig.hwm,
      ratio: compiledBig.hwm / tsxBig.hwm,
      target: `< ${IMPORT_TARGET_MB} MB`,
      met: compiledBig.hwm < IMPORT_TARGET_MB,
      note: `VmHWM of the child; compiled ${rate(compiledBig)} rows/s, tsx ${rate(tsxBig)} rows/s`,
    });
    if (largest > 100_000) {
      ctx.record({
        bench: "memory",
        metric: `compiled worker peak RSS growth 100k -> ${largest} rows, ${heap.label}`,
        value: compiledBig.hwm,
        unit: "MB",
        baseline: "peak at 100k rows",
        baselineValue: compiledSmall.hwm,
        ratio: compiledBig.hwm / compiledSmall.hwm,
        target: "~1.0 (not growing)",
        met: compiledBig.hwm / compiledSmall.hwm < 1.2,
      });
    }
  }
}
