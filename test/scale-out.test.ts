import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  activityAttempts,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";
import { spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";

/**
 * Replicas as separate OS processes, the way they run in production: two csv-import workers on
 * one task queue share a run's work; one is killed with SIGKILL half-way; another is stopped with
 * SIGTERM while it works. Every company's rows end up imported exactly once.
 */

const COMPANIES = 24;
/** Fetches in flight per run: enough for both replicas to hold some at once. */
const CONCURRENCY = 8;
const ROWS = 40;

function csvFor(company: number): string {
  const lines: string[] = [];
  for (let row = 0; row < ROWS; row++)
    lines.push(`c${company}-s${row},01.05.2025 08:00:00,01.05.2025 08:01:00`);
  return lines.join("\n");
}

/** The id of the run a trigger just started (the newest action of the schedule). */
async function startedRun(stack: TestStack): Promise<string> {
  const handle = stack.client.schedule.getHandle(stack.defs["csv-import"]?.scheduleId ?? "");
  let workflowId: string | undefined;
  await expect
    .poll(
      async () => {
        const actions = (await handle.describe()).info.recentActions;
        const latest = actions.at(-1);
        const running =
          latest &&
          (await stack.db.schedulerRun.count({
            where: { workflowId: latest.action.workflow.workflowId, outcome: "RUNNING" },
          }));
        workflowId = running ? latest.action.workflow.workflowId : undefined;
        return workflowId;
      },
      { timeout: 30_000, interval: 100 },
    )
    .toBeDefined();
  return workflowId ?? "";
}

describe("replicas of one worker type in separate processes", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let delayMs = 2_000;
  const processes: WorkerProcess[] = [];

  const spawnReplica = async (name: string, extra: Record<string, string> = {}) => {
    const worker = await spawnWorkerProcess(name, { ...stack.env, ...extra }, [
      "--scheduler=csv-import",
    ]);
    processes.push(worker);
    await worker.waitReady();
    return worker;
  };

  beforeAll(async () => {
    source = await startHttpServer(async (req, res) => {
      const company = Number(/^\/c(\d+)\.csv$/.exec(req.url ?? "")?.[1]);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      res.writeHead(200, { "content-type": "text/csv" }).end(csvFor(company));
    });
    stack = await startTestStack({
      env: {
        CSV_IMPORT_BATCH_SIZE: "8",
        CSV_IMPORT_MAX_CONCURRENT: String(CONCURRENCY),
        // Every company is on one test host: these tests are about replicas, not host limits.
        FETCH_MAX_PER_HOST: "100",
        CSV_IMPORT_TIMEOUT: "30000",
        // Short enough to recover quickly from the kill, long enough for a busy 2-core machine.
        ACTIVITY_HEARTBEAT_TIMEOUT_MS: "5000",
        WORKER_SHUTDOWN_GRACE_MS: "15000",
      },
    });
    await stack.db.company.createMany({
      data: Array.from({ length: COMPANIES }, (_, i) => ({
        name: `Company ${i}`,
        csvUrl: `${source.url}/c${i}.csv`,
      })),
    });
  });

  afterAll(async () => {
    for (const worker of processes)
      if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
    await stack?.close();
    await source?.close();
  });

  it("shares a run between two processes; killing one half-way loses and duplicates nothing", async () => {
    const [a, b] = await Promise.all([spawnReplica("replica-a"), spawnReplica("replica-b")]);

    const running = stack.run<RunSummary<CsvImportRunCounts>>("csv-import");
    // Kill A once it has finished a company of its own; what it holds then is retried on B.
    const workflowId = await startedRun(stack);
    await expect
      .poll(
        async () =>
          (await activityAttempts(stack.client, workflowId)).some(
            (s) => s.activity === "importCompanyCsv" && s.identity === "replica-a:csv-import",
          ),
        { timeout: 60_000, interval: 50 },
      )
      .toBe(true);
    const killedAt = Date.now();
    a.child.kill("SIGKILL");
    expect(await a.exited).toBe("SIGKILL");

    const { result } = await running;
    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ companies: COMPANIES, imported: COMPANIES, failed: 0 });

    // Exactly once: every session id of every file, no more, no fewer.
    expect(await stack.db.sessionImport.count()).toBe(COMPANIES * ROWS);
    const perCompany = await stack.db.sessionImport.groupBy({ by: ["companyId"], _count: true });
    expect(perCompany.map((c) => c._count)).toEqual(Array(COMPANIES).fill(ROWS));

    // Both processes did part of the work; what A had in flight was retried on B.
    const starts = (await activityAttempts(stack.client, workflowId)).filter(
      (s) => s.activity === "importCompanyCsv",
    );
    const byWorker = new Set(starts.map((s) => s.identity));
    expect(byWorker).toEqual(new Set(["replica-a:csv-import", "replica-b:csv-import"]));
    // Whatever A held when it died was retried, and only the survivor could take the retries.
    const retriedAfterKill = starts.filter((s) => s.attempt > 1 && s.at >= killedAt);
    expect(retriedAfterKill.every((s) => s.identity === "replica-b:csv-import")).toBe(true);
    expect(b.child.exitCode).toBeNull();
  }, 120_000);

  it("SIGTERM: readiness turns 503 at once, in-flight activities finish, the process exits 0", async () => {
    // Only C serves the queue, so what it holds at SIGTERM is known to be its own.
    for (const worker of processes.filter(
      (p) => p.child.exitCode === null && p.child.signalCode === null,
    )) {
      worker.child.kill("SIGTERM");
      expect(await worker.exited).toBe(0);
    }
    await stack.db.sessionImport.deleteMany();
    delayMs = 3_000;
    // A heartbeat window longer than the drain, so the server never gives up on C's activities.
    const patient = { ACTIVITY_HEARTBEAT_TIMEOUT_MS: "20000" };
    const c = await spawnReplica("replica-c", { ...patient, LOG_LEVEL: "info" });
    const requestsBefore = source.requests.length;
    const running = stack.run<RunSummary<CsvImportRunCounts>>("csv-import");
    // C holds a full run's worth of fetches, each waiting on the slow source.
    await expect
      .poll(async () => source.requests.length - requestsBefore, { timeout: 30_000, interval: 50 })
      .toBe(CONCURRENCY);
    c.child.kill("SIGTERM");
    await expect.poll(() => c.readyz(), { timeout: 2_000, interval: 50 }).toBe(503);
    expect(await c.exited).toBe(0);
    expect(c.output()).toContain("shutting down");
    // The ones it held were finished, not abandoned: their rows are in.
    expect(await stack.db.sessionImport.count()).toBe(CONCURRENCY * ROWS);

    // Another replica picks up the rest of the run.
    delayMs = 200;
    await spawnReplica("replica-d", patient);
    const { workflowId, result } = await running;
    expect(result.outcome).toBe("SUCCEEDED");
    expect(await stack.db.sessionImport.count()).toBe(COMPANIES * ROWS);
    const starts = (await activityAttempts(stack.client, workflowId)).filter(
      (s) => s.activity === "importCompanyCsv",
    );
    expect(starts.filter((s) => s.identity === "replica-c:csv-import")).toHaveLength(CONCURRENCY);
    expect(starts.filter((s) => s.attempt > 1)).toEqual([]);
  }, 120_000);
});
