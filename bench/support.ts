import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Client, Connection, ScheduleOverlapPolicy } from "@temporalio/client";
import type { Database } from "../lib/db.ts";
import { applyMigrations } from "../lib/migrations.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  createDatabase,
  databaseUrlFor,
  dropDatabase,
  startEmbeddedPostgres,
} from "../scripts/services/postgres.ts";
import {
  ensureTemporalCli,
  PROJECT_ROOT,
  startTemporalDevServer,
} from "../scripts/services/temporal.ts";

/** Midnight on January 1st: runs happen only when the bench triggers them. */
export const NEVER = "0 0 1 1 *";

export interface Services {
  runId: string;
  temporalAddress: string;
  adminUrl: string;
  /** A fresh, migrated database of this run. */
  freshDatabase(label: string): Promise<string>;
  stop(): Promise<void>;
}

/** A headless Temporal dev server on a free port and PostgreSQL (DATABASE_URL's or embedded). */
export async function startServices(log: (line: string) => void): Promise<Services> {
  const runId = randomBytes(4).toString("hex");
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const cli = await ensureTemporalCli();
    const temporal = await startTemporalDevServer({
      cli,
      port: await freePort(),
      headless: true,
    });
    cleanups.push(temporal.stop);
    log(`temporal dev server at ${temporal.address}`);

    let adminUrl: string;
    if (process.env.DATABASE_URL) {
      adminUrl = databaseUrlFor(process.env.DATABASE_URL, "postgres");
      log("postgres: DATABASE_URL's server");
    } else {
      const dataDir = join(PROJECT_ROOT, ".data", `bench-${runId}`);
      const pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
      cleanups.push(async () => {
        await pg.stop();
        rmSync(dataDir, { recursive: true, force: true });
      });
      adminUrl = pg.adminUrl;
      log(`embedded postgres in ${dataDir}`);
    }
    const created: string[] = [];
    cleanups.push(async () => {
      for (const name of created) await dropDatabase(adminUrl, name).catch(() => undefined);
    });
    return {
      runId,
      temporalAddress: temporal.address,
      adminUrl,
      freshDatabase: async (label) => {
        const name = `livedash_bench_${runId}_${label.replace(/[^a-z0-9_]/g, "_")}`;
        await createDatabase(adminUrl, name);
        created.push(name);
        const url = databaseUrlFor(adminUrl, name);
        await applyMigrations(url);
        return url;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Configuration environment of a bench worker (in-process or child). */
export function benchEnv(
  databaseUrl: string,
  temporalAddress: string,
  region: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    REGION: region,
    LOG_LEVEL: "warn",
    WORKER_SHUTDOWN_GRACE_MS: "2000",
    CSV_IMPORT_INTERVAL: NEVER,
    IMPORT_PROCESSING_INTERVAL: NEVER,
    SESSION_PROCESSING_INTERVAL: NEVER,
    BATCH_PROCESSING_INTERVAL: NEVER,
    BATCH_PROCESSING_CHECK_INTERVAL: NEVER,
    CSV_IMPORT_TIMEOUT: "600000",
    CSV_IMPORT_MAX_BYTES: String(4 * 1024 * 1024 * 1024),
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// Generated CSV data
// ---------------------------------------------------------------------------------------------

/** One realistic 16-column session row (the companies' headerless CSV format). */
export function csvLine(prefix: string, i: number): string {
  const minute = String(i % 60).padStart(2, "0");
  return `${prefix}-${i},30.04.2025 11:${minute}:48,30.04.2025 11:${minute}:59,10.0.${(i >> 8) & 255}.${i & 255},NL,english,${(i % 9) + 1},happy,no,no,https://example.test/t/${prefix}-${i}.txt,3.977,${6000 + (i % 1000)},0.0010,Greeting,"Good day, I have a question about my salary"\n`;
}

/** Lines 0..rows-1 from `line(i)` as a stream of ~64 KiB chunks, generated on the fly. */
export function generatedStream(rows: number, line: (i: number) => string): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i >= rows) {
        this.push(null);
        return;
      }
      let chunk = "";
      while (i < rows && chunk.length < 64 * 1024) chunk += line(i++);
      this.push(chunk);
    },
  });
}

/** A company's CSV rows, generated on the fly. */
export function csvStream(prefix: string, rows: number): Readable {
  return generatedStream(rows, (i) => csvLine(prefix, i));
}

export interface CsvSource {
  url: string;
  /** URL of a company's CSV: `rows` generated rows whose session ids start with `prefix`. */
  urlFor(prefix: string, rows: number): string;
  close(): Promise<void>;
}

/** Loopback HTTP server streaming generated CSV (GET /csv/<prefix>/<rows>), in a child process. */
export async function startCsvSource(): Promise<CsvSource> {
  const child = spawn(process.execPath, ["--import", "tsx", join("bench", "csv-source.ts")], {
    cwd: PROJECT_ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("CSV source did not start in 30 s")), 30_000);
    child.stdout?.on("data", (data: Buffer) => {
      out += data.toString("utf8");
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`CSV source exited with code ${code}`));
    });
  });
  return {
    url,
    urlFor: (prefix, rows) => `${url}/csv/${prefix}/${rows}`,
    close: async () => {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Triggering and timing
// ---------------------------------------------------------------------------------------------

export async function connectClient(
  address: string,
): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection }), close: () => connection.close() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface TimedRun {
  /** Trigger to the run's recorded finish (SchedulerRun.finishedAt). */
  ms: number;
  outcome: string;
  counts: unknown;
}

/**
 * Triggers a schedule and waits (bounded) for the SchedulerRun row it produces to be finished.
 * Workflow ids carry the trigger time to the second, so triggers are spaced a second apart.
 */
export async function triggerAndTime(
  client: Client,
  db: Database,
  scheduleId: string,
  timeoutMs: number,
): Promise<TimedRun> {
  const known = new Set(
    (await db.schedulerRun.findMany({ where: { scheduleId }, select: { id: true } })).map(
      (r) => r.id,
    ),
  );
  const lastStart = await db.schedulerRun.findFirst({
    where: { scheduleId },
    orderBy: { startedAt: "desc" },
    select: { startedAt: true },
  });
  const wait = Math.floor((lastStart?.startedAt.getTime() ?? 0) / 1000) * 1000 + 1100 - Date.now();
  if (wait > 0) await sleep(wait);
  const triggeredAt = Date.now();
  await client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
  const deadline = triggeredAt + timeoutMs;
  for (;;) {
    // A worker in this process can stall the event loop for seconds (see the report), which
    // times out pool connections: a failed poll is retried until the deadline, not fatal.
    const run = await db.schedulerRun
      .findFirst({
        where: { scheduleId, finishedAt: { not: null }, id: { notIn: [...known] } },
      })
      .catch(() => null);
    if (run?.finishedAt) {
      return {
        ms: run.finishedAt.getTime() - triggeredAt,
        outcome: run.outcome,
        counts: run.counts,
      };
    }
    if (Date.now() > deadline) throw new Error(`${scheduleId}: no finished run in ${timeoutMs} ms`);
    await sleep(25);
  }
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

export interface ResultRow {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
  /** value / baselineValue (or the inverse for lower-is-better, stated in `note`). */
  ratio?: number;
  target?: string;
  met?: boolean;
  note?: string;
}

export interface BenchContext {
  services: Services;
  workflowBundle: { code: string };
  large: boolean;
  log(line: string): void;
  record(row: ResultRow): void;
}
