import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Client, Connection, ScheduleOverlapPolicy } from "@temporalio/client";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import { applyMigrations } from "../adapters/db/migrations.ts";
import { createLogger } from "../adapters/logger.ts";
import type { WorkerType } from "../domain/scheduler-id.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  createDatabase,
  databaseUrlFor,
  dropDatabase,
  startRunPostgres,
} from "../scripts/services/postgres.ts";
import {
  ensureTemporalCli,
  PROJECT_ROOT,
  startTemporalDevServer,
} from "../scripts/services/temporal.ts";
import { type RunningWorkers, startWorkers } from "../workers/runtime.ts";

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

    const dataDir = join(PROJECT_ROOT, ".data", `bench-${runId}`);
    const postgres = await startRunPostgres(dataDir);
    cleanups.push(postgres.stop);
    const adminUrl = postgres.adminUrl;
    log(postgres.embedded ? `embedded postgres in ${dataDir}` : "postgres: DATABASE_URL's server");
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
    // The generated sources listen on 127.0.0.1, which fetches refuse by default.
    FETCH_ALLOW_PRIVATE_NETWORKS: "127.0.0.0/8,::1",
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
  /** The first host's URL. */
  url: string;
  /** Every host's URL (one unless started with more). */
  urls: readonly string[];
  /** URL of a company's CSV: `rows` generated rows whose session ids start with `prefix`. */
  urlFor(prefix: string, rows: number, options?: { transcripts?: boolean; host?: number }): string;
  /** Requests served so far and the most served at once, on any one host (the per-host limit's witness). */
  stats(): Promise<{ requests: number; maxActive: number }>;
  close(): Promise<void>;
}

/** A helper server in a child process: `node --import tsx <script> <args>`. */
export interface ChildService {
  /** What the child printed first (its URL, parsed by the caller). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts a script that prints its URL on its first stdout line and stops on stdin EOF or
 * SIGTERM. A child of its own, so its work does not compete with the bench's event loop.
 */
export async function startChildService(
  script: string,
  args: readonly string[],
  parseUrl: (firstLine: string) => string | undefined,
): Promise<ChildService> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: PROJECT_ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 30 s`)), 30_000);
    const onData = (data: Buffer) => {
      out += data.toString("utf8");
      if (!out.includes("\n")) return;
      // Later output is read and dropped, so the pipe never fills up.
      child.stdout?.off("data", onData);
      child.stdout?.resume();
      clearTimeout(timer);
      const parsed = parseUrl(out.split("\n")[0]?.trim() ?? "");
      if (parsed) resolve(parsed);
      else reject(new Error(`${script} printed no URL: ${out.slice(0, 200)}`));
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with code ${code}`));
    });
  }).catch(async (error: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw error;
  });
  return {
    url,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin?.end();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Loopback HTTP server streaming generated CSV (GET /csv/<prefix>/<rows>), in a child process,
 * on `hosts` ports: each port is a source host of its own.
 */
export async function startCsvSource(hosts = 1): Promise<CsvSource> {
  const service = await startChildService(
    join("bench", "csv-source.ts"),
    [String(hosts)],
    (line) => (line.startsWith("http://") ? line : undefined),
  );
  const urls = service.url.split(" ");
  const url = urls[0] as string;
  return {
    url,
    urls,
    urlFor: (prefix, rows, options) =>
      `${urls[(options?.host ?? 0) % urls.length]}/csv/${prefix}/${rows}${options?.transcripts ? "?transcripts" : ""}`,
    stats: async () =>
      (await (await fetch(`${url}/stats`)).json()) as {
        requests: number;
        maxActive: number;
      },
    close: service.close,
  };
}

/**
 * The OpenAI stand-in as operators run it (`openai-stand-in/main.ts`), in a child process on a
 * free port; returns its base URL (ending in /v1).
 */
export function startOpenAIStandInProcess(options: {
  latencyMs: number;
  /** validating, in_progress, finalizing durations of a batch. */
  batchMs?: readonly [number, number, number];
}): Promise<ChildService> {
  const args = ["--port", "0", "--latency-ms", String(options.latencyMs)];
  if (options.batchMs) args.push("--batch-ms", options.batchMs.join(","));
  return startChildService(
    join("openai-stand-in", "main.ts"),
    args,
    (line) => /(http:\/\/\S+\/v1)/.exec(line)?.[1],
  );
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
  /** The run's own record (SchedulerRun.startedAt, finishedAt, workflow and run id). */
  startedAt: Date;
  finishedAt: Date;
  workflowId: string;
  runId: string;
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
        startedAt: run.startedAt,
        finishedAt: run.finishedAt,
        workflowId: run.workflowId,
        runId: run.runId,
      };
    }
    if (Date.now() > deadline) throw new Error(`${scheduleId}: no finished run in ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** One activity execution of a workflow run, as its Temporal history records it. */
export interface ActivityExecution {
  identity: string;
  attempt: number;
  /** Why the previous attempt failed (retried executions only). */
  lastFailure?: string;
  scheduledAt: number;
  startedAt: number;
  closedAt: number;
}

/** The executions of `activityType` in a run's history (times in ms since the epoch). */
export async function activityExecutions(
  client: Client,
  workflowId: string,
  runId: string,
  activityType: string,
): Promise<ActivityExecution[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const ms = (time: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(time?.seconds ?? 0) * 1000 + Math.floor((time?.nanos ?? 0) / 1e6);
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<
    string,
    { identity: string; attempt: number; lastFailure?: string; at: number }
  >();
  const executions: ActivityExecution[] = [];
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    const at = ms(event.eventTime);
    const attrs = event.activityTaskScheduledEventAttributes;
    if (attrs) scheduled.set(id, { type: attrs.activityType?.name ?? "", at });
    const start = event.activityTaskStartedEventAttributes;
    if (start) {
      started.set(id, {
        identity: start.identity ?? "",
        attempt: start.attempt ?? 1,
        ...(start.lastFailure?.message ? { lastFailure: start.lastFailure.message } : {}),
        at,
      });
    }
    const closed =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes;
    if (closed) {
      const task = scheduled.get(String(closed.scheduledEventId));
      const run = started.get(String(closed.startedEventId));
      if (task?.type === activityType && run) {
        executions.push({ ...run, scheduledAt: task.at, startedAt: run.at, closedAt: at });
      }
    }
  }
  return executions;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

// ---------------------------------------------------------------------------------------------
// Analysis backlog
// ---------------------------------------------------------------------------------------------

/**
 * Seeds `sessions` sessions as import processing leaves them: import PROCESSED, four messages
 * (half the sessions ask a question of their own, half one of four common ones), stage rows
 * with the transcript final and AI_ANALYSIS pending. Ids derive from `prefix` (md5), so two
 * databases seeded alike hold the same ids. With `requests`, each session also has its
 * AIProcessingRequest (id md5(prefix-request-i)) as session processing in batch mode leaves it,
 * AI_ANALYSIS IN_PROGRESS. Set-based SQL: 20,000 sessions take seconds, not minutes.
 */
export async function seedAnalysisBacklog(
  db: Database,
  options: {
    companyId: string;
    sessions: number;
    prefix: string;
    requests?: "PENDING_BATCHING" | "BATCHING_IN_PROGRESS";
  },
): Promise<void> {
  const { companyId, sessions: n, prefix: p } = options;
  const queued = options.requests !== undefined;
  await db.$executeRaw`
    INSERT INTO "SessionImport" (id, "companyId", "externalSessionId", "startTimeRaw", "endTimeRaw",
                                 status, "processedAt", "updatedAt")
    SELECT md5(${p}::text || '-import-' || i)::uuid, ${companyId}::uuid, ${p}::text || '-' || i,
           '01.05.2025 10:00:00', '01.05.2025 10:05:00', 'PROCESSED', now(), now()
    FROM generate_series(0, ${n}::int - 1) AS i`;
  await db.$executeRaw`
    INSERT INTO "Session" (id, "companyId", "importId", "startTime", "endTime", "messagesSent", "updatedAt")
    SELECT md5(${p}::text || '-session-' || i)::uuid, ${companyId}::uuid,
           md5(${p}::text || '-import-' || i)::uuid,
           timestamp '2025-05-01 10:00:00', timestamp '2025-05-01 10:05:00', 4, now()
    FROM generate_series(0, ${n}::int - 1) AS i`;
  await db.$executeRaw`
    INSERT INTO "Message" (id, "sessionId", role, content, "order")
    SELECT md5(${p}::text || '-message-' || i || '-' || o)::uuid,
           md5(${p}::text || '-session-' || i)::uuid,
           CASE WHEN o = 2 THEN 'assistant' ELSE 'user' END,
           CASE o
             WHEN 0 THEN (ARRAY['Hello, I have a question.', 'Good morning!', 'Hi there',
                                'Hallo, ik heb een vraag.'])[1 + i % 4]
             WHEN 1 THEN CASE WHEN i % 2 = 0
               THEN 'Case ' || i || ': how many vacation days do I have left?'
               ELSE (ARRAY['How do I report sick leave?', 'When is my salary paid this month?',
                           'Where can I get a new staff pass?', 'Can I swap my shift on Friday?'])[1 + (i / 2) % 4]
             END
             WHEN 2 THEN 'Let me check that for you.'
             ELSE 'Thanks, that is helpful!'
           END,
           o
    FROM generate_series(0, ${n}::int - 1) AS i CROSS JOIN generate_series(0, 3) AS o`;
  await db.$executeRaw`
    INSERT INTO "SessionProcessingStatus" (id, "sessionId", stage, status, "startedAt", "completedAt", "updatedAt")
    SELECT md5(${p}::text || '-stage-' || i || '-' || st)::uuid,
           md5(${p}::text || '-session-' || i)::uuid,
           st::"ProcessingStage",
           (CASE
              WHEN st = 'AI_ANALYSIS' AND ${queued} THEN 'IN_PROGRESS'
              WHEN st IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION') THEN 'PENDING'
              ELSE 'COMPLETED'
            END)::"ProcessingStatus",
           CASE WHEN st IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION') AND NOT ${queued} THEN NULL ELSE now() END,
           CASE WHEN st IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION') THEN NULL ELSE now() END,
           now()
    FROM generate_series(0, ${n}::int - 1) AS i
    CROSS JOIN unnest(ARRAY['CSV_IMPORT', 'TRANSCRIPT_FETCH', 'SESSION_CREATION', 'AI_ANALYSIS',
                            'QUESTION_EXTRACTION']) AS st`;
  if (options.requests) {
    await db.$executeRaw`
      INSERT INTO "AIProcessingRequest" (id, "sessionId", "companyId", model, "processingStatus")
      SELECT md5(${p}::text || '-request-' || i)::uuid, md5(${p}::text || '-session-' || i)::uuid,
             ${companyId}::uuid, 'gpt-4o-mini', ${options.requests}::text::"AIRequestStatus"
      FROM generate_series(0, ${n}::int - 1) AS i`;
  }
}

/** What the database says about one company's analysis: row counts and time stamps. */
export interface AnalysisFigures {
  sessions: number;
  /** AIProcessingRequest rows, and the distinct sessions they belong to. */
  requests: number;
  requestedSessions: number;
  completed: number;
  failed: number;
  /** Sessions whose AI_ANALYSIS stage is COMPLETED. */
  completedStages: number;
  sessionQuestions: number;
  firstRequestedAt: Date | null;
  firstCompletedAt: Date | null;
  lastCompletedAt: Date | null;
}

export async function analysisFigures(db: Database, companyId: string): Promise<AnalysisFigures> {
  const [requests] = await db.$queryRaw<
    {
      requests: number;
      requestedSessions: number;
      completed: number;
      failed: number;
      firstRequestedAt: Date | null;
      firstCompletedAt: Date | null;
      lastCompletedAt: Date | null;
    }[]
  >`
    SELECT count(*)::int AS requests,
           count(DISTINCT "sessionId")::int AS "requestedSessions",
           (count(*) FILTER (WHERE "processingStatus" = 'PROCESSING_COMPLETE'))::int AS completed,
           (count(*) FILTER (WHERE "processingStatus" = 'PROCESSING_FAILED'))::int AS failed,
           min("requestedAt") AS "firstRequestedAt",
           min("completedAt") AS "firstCompletedAt",
           max("completedAt") AS "lastCompletedAt"
    FROM "AIProcessingRequest" WHERE "companyId" = ${companyId}::uuid`;
  const [sessions] = await db.$queryRaw<
    { sessions: number; completedStages: number; sessionQuestions: number }[]
  >`
    SELECT count(*)::int AS sessions,
           (SELECT count(*)::int FROM "SessionProcessingStatus" sps JOIN "Session" s2 ON s2.id = sps."sessionId"
             WHERE s2."companyId" = ${companyId}::uuid AND sps.stage = 'AI_ANALYSIS'
               AND sps.status = 'COMPLETED') AS "completedStages",
           (SELECT count(*)::int FROM "SessionQuestion" sq JOIN "Session" s3 ON s3.id = sq."sessionId"
             WHERE s3."companyId" = ${companyId}::uuid) AS "sessionQuestions"
    FROM "Session" s WHERE s."companyId" = ${companyId}::uuid`;
  if (!requests || !sessions) throw new Error("analysis figures: no row");
  return { ...requests, ...sessions };
}

/** Requests per second from `from` to the last recorded completion. */
export function ratePerSecond(count: number, from: Date, to: Date | null): number {
  if (!to || to.getTime() <= from.getTime()) return Number.NaN;
  return (count / (to.getTime() - from.getTime())) * 1000;
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

/** In-process workers of these types for a bench, on the run's shared workflow bundle. */
export function startBenchWorkers(
  ctx: BenchContext,
  config: Config,
  db: Database,
  types: readonly WorkerType[],
): Promise<RunningWorkers> {
  return startWorkers({
    config,
    db,
    log: createLogger("warn", "bench-worker"),
    types,
    workflowBundle: ctx.workflowBundle,
  });
}
