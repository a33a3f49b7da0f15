import { mkdtempSync, rmSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { createDatabase } from "../adapters/db/client.ts";
import { createApp } from "../api/app.ts";
import { freePort } from "../scripts/services/ports.ts";
import { type DevServer, startTemporalDevServer } from "../scripts/services/temporal.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  activityAttempts,
  PRODUCTION_RETRY_INTERVALS,
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  testDatabase,
  testNamespace,
  triggerRun,
  waitFor,
} from "./support/harness.ts";
import { spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

/**
 * Faults of the services the platform stands on, injected during a csv-import run carried out
 * by a real worker process: the Temporal server crashing and coming back on the same database
 * file, and PostgreSQL becoming unreachable for a while. In both the run completes with every
 * row exactly once, and the worker's readiness reports the outage while it lasts.
 */

const COMPANIES = 6;
const ROWS = 2_000;
const CHUNK_ROWS = 100;
/** Each company's file trickles in over ~3 s, so the run is mid-way when the fault hits. */
const CHUNK_DELAY_MS = 150;

function csvChunk(company: number, from: number): string {
  const lines: string[] = [];
  for (let row = from; row < Math.min(ROWS, from + CHUNK_ROWS); row++)
    lines.push(`f${company}-s${row},01.05.2025 08:00:00,01.05.2025 08:01:00\n`);
  return lines.join("");
}

async function streamCsv(company: number, res: ServerResponse): Promise<void> {
  res.writeHead(200, { "content-type": "text/csv" });
  for (let from = 0; from < ROWS; from += CHUNK_ROWS) {
    if (res.destroyed) return;
    res.write(csvChunk(company, from));
    await new Promise((resolve) => setTimeout(resolve, CHUNK_DELAY_MS));
  }
  res.end();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Readiness {
  status: number;
  dependencies: Record<string, { ok: boolean; lastError?: string }>;
}

/** The worker's /readyz; status 0 when it does not answer. */
async function readiness(worker: WorkerProcess): Promise<Readiness> {
  try {
    const response = await fetch(`http://127.0.0.1:${worker.healthPort}/readyz`);
    const body = (await response.json()) as { dependencies?: Readiness["dependencies"] };
    return { status: response.status, dependencies: body.dependencies ?? {} };
  } catch {
    return { status: 0, dependencies: {} };
  }
}

async function expectEveryRowOnce(stack: TestStack): Promise<void> {
  expect(await stack.db.sessionImport.count()).toBe(COMPANIES * ROWS);
  const perCompany = await stack.db.sessionImport.groupBy({
    by: ["companyId"],
    _count: { _all: true },
  });
  expect(perCompany.map((c) => c._count._all)).toEqual(Array(COMPANIES).fill(ROWS));
}

describe("faults of Temporal and PostgreSQL during a run", () => {
  let source: TestHttpServer | undefined;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    cleanups.length = 0;
    await source?.close();
  });

  async function setUp(env: Record<string, string>, workerDatabaseUrl?: (url: string) => string) {
    source = await startHttpServer(async (req, res) => {
      const company = Number(/^\/f(\d+)\.csv$/.exec(req.url ?? "")?.[1]);
      await streamCsv(company, res);
    });
    const database = await testDatabase();
    const stack = await startTestStack({
      database,
      env: {
        CSV_IMPORT_MAX_CONCURRENT: "2",
        CSV_IMPORT_BATCH_SIZE: String(COMPANIES),
        CSV_IMPORT_TIMEOUT: "60000",
        ACTIVITY_HEARTBEAT_TIMEOUT_MS: "5000",
        ...env,
      },
    });
    cleanups.push(
      () => database.drop(),
      () => stack.close(),
    );
    await stack.db.company.createMany({
      data: Array.from({ length: COMPANIES }, (_, i) => ({
        name: `Company ${i}`,
        csvUrl: `${source?.url}/f${i}.csv`,
      })),
    });
    const worker = await spawnWorkerProcess(
      `fault-${Math.random().toString(36).slice(2, 8)}`,
      { ...stack.env, DATABASE_URL: workerDatabaseUrl?.(database.url) ?? database.url },
      ["--scheduler=csv-import,import-processing"],
    );
    cleanups.push(() => {
      if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
    });
    await worker.waitReady();
    return { stack, worker };
  }

  it("the Temporal server crashes and restarts on the same database file mid-run: schedules, pause state and the run survive", async () => {
    const dir = mkdtempSync(join(tmpdir(), "livedash-temporal-fault-"));
    const port = await freePort();
    const start = () =>
      startTemporalDevServer({
        cli: inject("temporalCli"),
        port,
        dbFile: join(dir, "temporal.db"),
        headless: true,
        // The namespace the stack's configuration names (testNamespace).
        namespace: testNamespace(),
      });
    let server: DevServer = await start();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => server.stop());

    const { stack, worker } = await setUp({ TEMPORAL_ADDRESS: server.address });
    const paused = stack.client.schedule.getHandle(
      stack.defs["import-processing"]?.scheduleId ?? "",
    );
    await paused.pause("held by an operator during the fault test");
    const scheduleIds = Object.values(stack.defs)
      .map((d) => d.scheduleId)
      .filter((id) => /csv-import|import-processing/.test(id))
      .sort();

    const workflowId = await triggerRun(stack.client, stack.defs["csv-import"]?.scheduleId ?? "");
    await waitFor("the first rows", async () => (await stack.db.sessionImport.count()) > 0);
    const rowsAtCrash = await stack.db.sessionImport.count();

    // Injected: SIGKILL of the Temporal server (no graceful shutdown), mid-run.
    const crashedAt = Date.now();
    server.process.kill("SIGKILL");
    await new Promise((resolve) => server.process.once("exit", resolve));
    const noticed = await waitFor("readiness to report Temporal unreachable", async () => {
      const ready = await readiness(worker);
      return ready.status === 503 && ready.dependencies.temporal?.ok === false && ready;
    });
    expect(noticed.dependencies.database?.ok).toBe(true);
    const noticedAfterMs = Date.now() - crashedAt;

    server = await start();
    const restartedAt = Date.now();
    const downMs = restartedAt - crashedAt;

    // The client reconnects by itself; a call that meets the gap fails and is tried again.
    const result = await waitFor(
      "the run to complete after the restart",
      () =>
        (
          stack.client.workflow.getHandle(workflowId).result() as Promise<
            RunSummary<CsvImportRunCounts>
          >
        ).catch(() => undefined),
      { timeoutMs: 120_000 },
    );
    const completedAfterMs = Date.now() - restartedAt;
    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ companies: COMPANIES, imported: COMPANIES, failed: 0 });
    await expectEveryRowOnce(stack);

    // Everything Temporal held survived the crash: the schedules and an operator's pause.
    const listed: string[] = [];
    for await (const schedule of stack.client.schedule.list()) listed.push(schedule.scheduleId);
    expect(listed.filter((id) => scheduleIds.includes(id)).sort()).toEqual(scheduleIds);
    expect((await paused.describe()).state).toMatchObject({
      paused: true,
      note: "held by an operator during the fault test",
    });
    await waitFor("readiness to recover", async () => (await readiness(worker)).status === 200);
    const attempts = (await activityAttempts(stack.client, workflowId)).map((a) => a.attempt);
    console.log(
      `FAULT-FIGURES temporal-restart rows=${COMPANIES * ROWS} rowsAtCrash=${rowsAtCrash} downMs=${downMs} readinessNoticedMs=${noticedAfterMs} completedAfterRestartMs=${completedAfterMs} maxActivityAttempt=${Math.max(...attempts)} imported=${await stack.db.sessionImport.count()}`,
    );
  }, 240_000);

  it("PostgreSQL is unreachable for a while mid-run: activities retry with backoff, readiness reports it, nothing is lost or doubled", async () => {
    const adminUrl = new URL(inject("postgresAdminUrl"));
    const proxy: TcpProxy = await startTcpProxy({
      host: adminUrl.hostname,
      port: Number(adminUrl.port || 5432),
    });
    cleanups.push(() => proxy.close());
    const throughProxy = (url: string) => {
      const proxied = new URL(url);
      proxied.hostname = "127.0.0.1";
      proxied.port = String(proxy.port);
      return proxied.toString();
    };
    const { stack, worker } = await setUp(PRODUCTION_RETRY_INTERVALS, throughProxy);
    // The API reads through the same broken network path as the worker.
    const apiDb = createDatabase(throughProxy(stack.databaseUrl), { poolSize: 2 });
    cleanups.push(() => apiDb.$disconnect());
    const api = createApp({
      config: stack.config,
      client: stack.client,
      db: apiDb,
      log: silentLog,
    });

    const workflowId = await triggerRun(stack.client, stack.defs["csv-import"]?.scheduleId ?? "");
    await waitFor("the first rows", async () => (await stack.db.sessionImport.count()) > 0);
    const rowsAtCut = await stack.db.sessionImport.count();

    // Injected: every connection to PostgreSQL dropped, new ones refused, for at least 8 s.
    const cutAt = Date.now();
    await proxy.cut();
    // Within a probe round (5 s, 3 s probe timeout) on an idle machine; a loaded one is slower.
    let lastSeen: Readiness | undefined;
    const noticed = await waitFor(
      "readiness to report PostgreSQL unreachable",
      async () => {
        const ready = await readiness(worker);
        lastSeen = ready;
        return ready.status === 503 && ready.dependencies.database?.ok === false && ready;
      },
      { timeoutMs: 60_000 },
    ).catch((error: Error) => {
      // What the worker said last, and its own log, to tell a slow probe from a wrong one.
      throw new Error(
        `${error.message}; last /readyz: ${JSON.stringify(lastSeen)}; worker log tail:\n${worker.output().slice(-3_000)}`,
      );
    });
    expect(noticed.dependencies.temporal?.ok).toBe(true);
    const noticedAfterMs = Date.now() - cutAt;
    const apiReady = await api.request("/readyz");
    expect(apiReady.status).toBe(503);
    expect(JSON.stringify(await apiReady.json())).toMatch(/"name":"postgres","ok":false/);
    // The documented health endpoint answers (503, the scheduler ERROR) rather than failing.
    const healthDuring = await api.request("/api/admin/schedulers/health");
    expect(healthDuring.status).toBe(503);
    expect(
      ((await healthDuring.json()) as { details: Record<string, unknown> }).details["csv-import"],
    ).toMatchObject({ status: "ERROR", healthy: false });
    // Nothing can be written meanwhile: the row count stands still.
    const rowsDuringOutage = await stack.db.sessionImport.count();
    await sleep(Math.max(0, 8_000 - (Date.now() - cutAt)));
    expect(await stack.db.sessionImport.count()).toBe(rowsDuringOutage);
    await proxy.restore();
    const restoredAt = Date.now();

    const result = (await waitFor(
      "the run to complete after PostgreSQL is back",
      () =>
        stack.client.workflow
          .getHandle(workflowId)
          .result()
          .catch(() => undefined),
      { timeoutMs: 120_000 },
    )) as RunSummary<CsvImportRunCounts>;
    const completedAfterMs = Date.now() - restoredAt;
    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ companies: COMPANIES, imported: COMPANIES, failed: 0 });
    await expectEveryRowOnce(stack);
    // The outage cost attempts, not rows: some activity ran again after failing.
    const attempts = (await activityAttempts(stack.client, workflowId)).map((a) => a.attempt);
    expect(Math.max(...attempts)).toBeGreaterThan(1);
    await waitFor("readiness to recover", async () => (await readiness(worker)).status === 200);
    expect((await api.request("/readyz")).status).toBe(200);
    const healthAfter = (await (await api.request("/api/admin/schedulers/health")).json()) as {
      details: Record<string, unknown>;
    };
    expect(healthAfter.details["csv-import"]).toMatchObject({ status: "RUNNING", healthy: true });
    console.log(
      `FAULT-FIGURES postgres-outage rows=${COMPANIES * ROWS} rowsAtCut=${rowsAtCut} outageMs=${restoredAt - cutAt} readinessNoticedMs=${noticedAfterMs} completedAfterRestoreMs=${completedAfterMs} retriedAttempts=${attempts.filter((a) => a > 1).length} maxActivityAttempt=${Math.max(...attempts)} imported=${await stack.db.sessionImport.count()}`,
    );
  }, 240_000);
});
