import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type Client, ScheduleOverlapPolicy, type WorkflowHandle } from "@temporalio/client";
import { defaultPayloadConverter } from "@temporalio/common";
import pg from "pg";
import { inject } from "vitest";
import { type Config, loadConfig } from "../../adapters/config.ts";
import { createDatabase as createPrisma, type Database } from "../../adapters/db/client.ts";
import { createLogger } from "../../adapters/logger.ts";
import { connectTemporalClient, type TemporalClient } from "../../adapters/temporal.ts";
import {
  maintenanceDefinitions,
  type SchedulerDefinition,
  schedulerDefinitions,
} from "../../control-plane/scheduler-registry.ts";
import type { WorkerType } from "../../domain/scheduler-id.ts";
import { databaseUrlFor } from "../../scripts/services/postgres.ts";
import { type RunningWorkers, startWorkers } from "../../workers/runtime.ts";
import { leaseNamespace } from "./namespace-lease.ts";

export const silentLog = createLogger("silent");

let namespace: string | undefined;

/**
 * This test process's Temporal namespace: files that run at the same time get different ones
 * (support/namespace-lease.ts); one namespace for all on an outside server.
 */
export function testNamespace(): string {
  const namespaces = inject("temporalNamespaces");
  if (namespaces.length <= 1) return namespaces[0] ?? "default";
  namespace ??= leaseNamespace(namespaces, inject("runId"));
  return namespace;
}

/** Midnight on January 1st. */
const NEVER_DURING_TESTS = "0 0 1 1 *";

/**
 * A retried CSV fetch, import or model call waits 100 ms before its next attempt in the tests,
 * where production waits seconds: the same attempts and outcomes, without the waiting. Suites
 * that test the backoff itself (an outage it must outlast) ask for PRODUCTION_RETRY_INTERVALS.
 */
const FAST_RETRY_INTERVALS = {
  CSV_IMPORT_RETRY_INTERVAL_MS: "100",
  IMPORT_PROCESSING_RETRY_INTERVAL_MS: "100",
  ANALYSIS_RETRY_INTERVAL_MS: "100",
};
/** The same variables blank, which means unset: the configured defaults. */
export const PRODUCTION_RETRY_INTERVALS = Object.fromEntries(
  Object.keys(FAST_RETRY_INTERVALS).map((name) => [name, ""]),
);

/** A database of this test file's own, cloned from the migrated template (fast, isolated). */
export async function testDatabase(): Promise<{
  url: string;
  db: Database;
  drop(): Promise<void>;
}> {
  const adminUrl = inject("postgresAdminUrl");
  const name = `livedash_test_${inject("runId")}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${inject("templateDatabase")}"`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlFor(adminUrl, name);
  const db = createPrisma(url, { poolSize: 5 });
  return {
    url,
    db,
    drop: async () => {
      await db.$disconnect();
    },
  };
}

/**
 * Configuration as production reads it, from environment variables. Each test file gets its own
 * REGION so its schedules and task queues never meet another file's.
 */
export function testEnv(
  databaseUrl: string,
  env: Record<string, string> = {},
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: inject("temporalAddress"),
    TEMPORAL_NAMESPACE: testNamespace(),
    REGION: `t${randomBytes(3).toString("hex")}`,
    LOG_LEVEL: "silent",
    WORKER_SHUTDOWN_GRACE_MS: "2000",
    // Runs happen when a test triggers them, never because a cron tick fell inside a test.
    CSV_IMPORT_INTERVAL: NEVER_DURING_TESTS,
    IMPORT_PROCESSING_INTERVAL: NEVER_DURING_TESTS,
    SESSION_PROCESSING_INTERVAL: NEVER_DURING_TESTS,
    BATCH_PROCESSING_INTERVAL: NEVER_DURING_TESTS,
    BATCH_PROCESSING_CHECK_INTERVAL: NEVER_DURING_TESTS,
    SCHEDULER_HISTORY_RETENTION_INTERVAL: NEVER_DURING_TESTS,
    // The tests' CSV and transcript servers listen on 127.0.0.1, which fetches refuse by default.
    FETCH_ALLOW_PRIVATE_NETWORKS: "127.0.0.0/8,::1",
    ...FAST_RETRY_INTERVALS,
    ...env,
  };
}

/**
 * Configuration as production reads it, from environment variables. Each test file gets its own
 * REGION so its schedules and task queues never meet another file's.
 */
export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig(testEnv(databaseUrl, env));
}

export async function testTemporalClient(config: Config): Promise<TemporalClient> {
  return connectTemporalClient(config);
}

export async function startTestWorkers(
  config: Config,
  db: Database,
  types: readonly WorkerType[],
  options: { reconcile?: boolean } = {},
): Promise<RunningWorkers> {
  return startWorkers({
    config,
    db,
    log: silentLog,
    types,
    workflowBundle: { codePath: inject("workflowBundlePath") },
    reconcile: options.reconcile ?? true,
  });
}

/**
 * Triggers a schedule now (with the schedule's own SKIP policy unless told otherwise) and
 * returns the id of the run it started.
 */
export async function triggerRun(
  client: Client,
  scheduleId: string,
  options: { overlap?: ScheduleOverlapPolicy; timeoutMs?: number } = {},
): Promise<string> {
  const handle = client.schedule.getHandle(scheduleId);
  const before = (await handle.describe()).info.recentActions;
  const seen = new Set(before.map((a) => a.action.workflow.workflowId));
  // Started workflow ids carry the trigger time to the second: two triggers in one second
  // would collide, so wait for the next second after the last run.
  const last = before.at(-1)?.takenAt.getTime() ?? 0;
  const wait = Math.floor(last / 1000) * 1000 + 1000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 20));
  await handle.trigger(options.overlap ?? ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const { recentActions } = (await handle.describe()).info;
    const started = recentActions.find((a) => !seen.has(a.action.workflow.workflowId));
    if (started) return started.action.workflow.workflowId;
    if (Date.now() > deadline)
      throw new Error(`schedule ${scheduleId} started no run after trigger`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Triggers a schedule now and waits for the run it started to finish; returns its result. */
export async function triggerAndWait<T = unknown>(
  client: Client,
  scheduleId: string,
  options: { overlap?: ScheduleOverlapPolicy; timeoutMs?: number } = {},
): Promise<{ workflowId: string; result: T }> {
  const workflowId = await triggerRun(client, scheduleId, options);
  const result = (await client.workflow.getHandle(workflowId).result()) as T;
  return { workflowId, result };
}

/**
 * JSON of a Temporal object (a history, describe() output) with its payloads decoded: the
 * client renders payload bytes as base64 `data` strings. For leak scans.
 */
export function payloadText(value: unknown): string {
  const json = JSON.stringify(value);
  const decoded: string[] = [];
  JSON.parse(json, (key, v: unknown) => {
    if (key === "data" && typeof v === "string")
      decoded.push(Buffer.from(v, "base64").toString("utf8"));
    return v;
  });
  return `${json}\n${decoded.join("\n")}`;
}

/** Everything Temporal stored for a workflow run, payloads decoded to text, for leak scans. */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  return payloadText(await client.workflow.getHandle(workflowId).fetchHistory());
}

export interface RunResult {
  outcome: string;
  counts: Record<string, unknown>;
  error?: string;
}

/** Everything a scheduler test needs against the real services, torn down by close(). */
export interface TestStack {
  db: Database;
  databaseUrl: string;
  /** The environment the configuration was read from (for worker processes of this stack). */
  env: Record<string, string>;
  config: Config;
  client: Client;
  /** Scheduler definitions of this stack's configuration, by scheduler id. */
  defs: Record<string, SchedulerDefinition>;
  /** Starts workers of these types (reconciling their schedules). */
  startWorkers(types: readonly WorkerType[]): Promise<RunningWorkers>;
  /** Triggers a scheduler's schedule and waits for the run's result. */
  run<T = RunResult>(schedulerId: string): Promise<{ workflowId: string; result: T }>;
  /** Runs the batch-status schedule until no batch (of the company, if given) is in flight. */
  settleBatches(companyId?: string): Promise<void>;
  close(): Promise<void>;
}

export async function startTestStack(
  options: {
    env?: Record<string, string>;
    workerTypes?: readonly WorkerType[];
    /** Share a database with other stacks of the same file (regions keep them apart). */
    database?: { url: string; db: Database };
  } = {},
): Promise<TestStack> {
  const database = options.database ?? (await testDatabase());
  const env = testEnv(database.url, options.env);
  const config = loadConfig(env);
  const temporal = await testTemporalClient(config);
  const defs = Object.fromEntries(schedulerDefinitions(config).map((d) => [d.id, d]));
  const running: RunningWorkers[] = [];
  const stack: TestStack = {
    db: database.db,
    databaseUrl: database.url,
    env,
    config,
    client: temporal.client,
    defs,
    startWorkers: async (types) => {
      const workers = await startTestWorkers(config, database.db, types);
      running.push(workers);
      return workers;
    },
    run: <T>(schedulerId: string) => {
      const def = defs[schedulerId];
      if (!def) throw new Error(`unknown scheduler ${schedulerId}`);
      return triggerAndWait<T>(temporal.client, def.scheduleId);
    },
    settleBatches: async (companyId) => {
      for (let i = 0; i < 20; i++) {
        await stack.run("batch-status");
        const open = await database.db.aIBatchRequest.count({
          where: {
            ...(companyId ? { companyId } : {}),
            status: { notIn: ["PROCESSED", "FAILED", "CANCELLED"] },
          },
        });
        if (open === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      throw new Error("batches still in flight after 20 status runs");
    },
    close: async () => {
      for (const def of [...Object.values(defs), ...maintenanceDefinitions(config)]) {
        await temporal.client.schedule
          .getHandle(def.scheduleId)
          .delete()
          .catch(() => undefined);
      }
      for (const workers of running) await workers.shutdown();
      await temporal.connection.close();
      if (!options.database) await database.db.$disconnect();
    },
  };
  if (options.workerTypes) await stack.startWorkers(options.workerTypes);
  return stack;
}

export interface TestHttpServer {
  url: string;
  requests: { method: string; url: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

/** A real local HTTP server for CSV and transcript endpoints. */
export async function startHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<TestHttpServer> {
  const requests: TestHttpServer["requests"] = [];
  const server = createServer((req, res) => {
    requests.push({
      method: req.method ?? "",
      url: req.url ?? "",
      authorization: req.headers.authorization,
    });
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function basicAuthOk(req: IncomingMessage, username: string, password: string): boolean {
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  return req.headers.authorization === expected;
}

/**
 * Polls `probe` until it returns a value (anything but undefined or false) and returns it; fails
 * with `what` once the deadline passes. For conditions, never fixed sleeps.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/**
 * Starts a scheduler's workflow directly, with the arguments and task queue its schedule uses,
 * so a test holds the run's handle from the first moment (describe, result).
 */
export async function startSchedulerRun(
  stack: TestStack,
  schedulerId: string,
): Promise<WorkflowHandle> {
  const def = stack.defs[schedulerId];
  if (!def) throw new Error(`unknown scheduler ${schedulerId}`);
  return stack.client.workflow.start(def.workflowType, {
    taskQueue: def.taskQueue,
    workflowId: `${def.scheduleId}-test-${randomBytes(4).toString("hex")}`,
    args: def.workflowArgs,
  });
}

export interface PendingActivity {
  activityType: string;
  attempt: number;
  /** The last heartbeat details the server holds (what a retried attempt resumes from). */
  heartbeat: unknown;
  lastWorkerIdentity: string;
}

/** A running workflow's pending activities, heartbeat details decoded. */
export async function pendingActivities(handle: WorkflowHandle): Promise<PendingActivity[]> {
  const { raw } = await handle.describe();
  return (raw.pendingActivities ?? []).map((activity) => {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    return {
      activityType: activity.activityType?.name ?? "",
      attempt: activity.attempt ?? 1,
      heartbeat: payload ? defaultPayloadConverter.fromPayload(payload) : undefined,
      lastWorkerIdentity: activity.lastWorkerIdentity ?? "",
    };
  });
}

/** The activity attempts a run's history records: type, attempt, worker identity, start time. */
export async function activityAttempts(
  client: Client,
  workflowId: string,
): Promise<{ activity: string; attempt: number; identity: string; at: number }[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  const attempts: { activity: string; attempt: number; identity: string; at: number }[] = [];
  for (const event of history.events ?? []) {
    const attrs = event.activityTaskScheduledEventAttributes;
    if (attrs) scheduled.set(String(event.eventId), attrs.activityType?.name ?? "");
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      attempts.push({
        activity: scheduled.get(String(started.scheduledEventId)) ?? "",
        attempt: started.attempt ?? 1,
        identity: started.identity ?? "",
        at:
          Number(event.eventTime?.seconds ?? 0) * 1000 +
          Math.floor((event.eventTime?.nanos ?? 0) / 1e6),
      });
    }
  }
  return attempts;
}
