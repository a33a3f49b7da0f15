import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAIStandIn, startOpenAIStandIn } from "../openai-stand-in/server.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { ImportProcessingCounts } from "../workflows/import-processing.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import type { SessionProcessingCounts } from "../workflows/session-processing.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerRun,
} from "./support/harness.ts";
import { killWorkerProcess, spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";
import { seedAnalysableSession } from "./support/seed-sessions.ts";

/**
 * A scheduled run drains its whole backlog, whatever its size: against a real Temporal dev server
 * and PostgreSQL, with import-processing workers as separate OS processes.
 */

const BIG = 100;
const SMALL = 5;
const TRANSCRIPT = "[01.05.2025 08:00:00] User: hello\n[01.05.2025 08:00:05] Assistant: hi there";

describe("a run drains its backlog across pages, executions and replicas", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  const processes: WorkerProcess[] = [];

  beforeAll(async () => {
    source = await startHttpServer(async (_req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      res.writeHead(200, { "content-type": "text/plain" }).end(TRANSCRIPT);
    });
    stack = await startTestStack({
      env: {
        // Pages of 10, 8 slots per replica, 30 in flight, a fresh execution every ~400 events.
        IMPORT_PROCESSING_BATCH_SIZE: "10",
        IMPORT_PROCESSING_MAX_CONCURRENT: "8",
        RUN_MAX_IN_FLIGHT: "30",
        RUN_HISTORY_EVENT_BUDGET: "400",
        ACTIVITY_HEARTBEAT_TIMEOUT_MS: "4000",
      },
    });
    const big = await stack.db.company.create({
      data: { name: "Big", csvUrl: `${source.url}/big.csv` },
    });
    // Small's imports arrive after all of Big's: oldest-first would serve them last.
    const small = await stack.db.company.create({
      data: { name: "Small", csvUrl: `${source.url}/small.csv` },
    });
    const imports = (companyId: string, prefix: string, count: number, createdAt: Date) =>
      Array.from({ length: count }, (_, i) => ({
        companyId,
        externalSessionId: `${prefix}-${i}`,
        startTimeRaw: "01.05.2025 08:00:00",
        endTimeRaw: "01.05.2025 08:05:00",
        fullTranscriptUrl: `${source.url}/t/${prefix}-${i}.txt`,
        createdAt,
      }));
    await stack.db.sessionImport.createMany({
      data: imports(big.id, "big", BIG, new Date(Date.now() - 60_000)),
    });
    await stack.db.sessionImport.createMany({
      data: imports(small.id, "small", SMALL, new Date()),
    });
  });

  afterAll(async () => {
    for (const worker of processes)
      if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
    await stack?.close();
    await source?.close();
  });

  it("one scheduled run takes every page, shares the work between two replicas, survives a SIGKILL of one, and records one run with correct totals", async () => {
    for (const name of ["drain-a", "drain-b"]) {
      const worker = await spawnWorkerProcess(name, stack.env, ["--scheduler=import-processing"]);
      processes.push(worker);
      await worker.waitReady();
    }
    const [a, b] = processes as [WorkerProcess, WorkerProcess];
    const scheduleId = stack.defs["import-processing"]?.scheduleId ?? "";
    const workflowId = await triggerRun(stack.client, scheduleId);

    // Half-way through, one replica dies without a goodbye.
    await expect
      .poll(() => stack.db.session.count(), { timeout: 60_000, interval: 100 })
      .toBeGreaterThanOrEqual(40);
    expect(await killWorkerProcess(b)).toBe("SIGKILL");

    const result = (await stack.client.workflow
      .getHandle(workflowId)
      .result()) as RunSummary<ImportProcessingCounts>;

    // Every import became exactly one session with its two messages, nothing twice.
    const total = BIG + SMALL;
    expect(await stack.db.session.count()).toBe(total);
    expect(await stack.db.message.count()).toBe(total * 2);
    expect(await stack.db.sessionImport.count({ where: { status: "PENDING" } })).toBe(0);
    // Counted once each: an import the killed replica committed before dying shows as skipped.
    expect(result.counts.processed + result.counts.skipped).toBe(total);
    expect(result.counts.considered).toBeGreaterThanOrEqual(total);
    expect(result.counts.transcriptsFetched + result.counts.skipped).toBe(total);

    // One run record for the whole scheduled run, finished by its last execution.
    const runs = await stack.db.schedulerRun.findMany({ where: { scheduleId } });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ workflowId, outcome: result.outcome });
    expect(runs[0]?.executions).toBeGreaterThan(1);
    expect(runs[0]?.counts).toMatchObject({ processed: result.counts.processed });

    // Each execution stayed within its history budget, and both replicas worked on the run.
    const identities = new Set<string>();
    let executions = 0;
    for await (const execution of stack.client.workflow.list({
      query: `WorkflowId = '${workflowId}'`,
    })) {
      executions += 1;
      expect(execution.historyLength).toBeLessThanOrEqual(400);
      const history = await stack.client.workflow
        .getHandle(workflowId, execution.runId)
        .fetchHistory();
      for (const event of history.events ?? []) {
        const identity = event.activityTaskStartedEventAttributes?.identity;
        if (identity) identities.add(identity.split(":")[0] ?? identity);
      }
    }
    expect(executions).toBe(runs[0]?.executions);
    expect([...identities].sort()).toEqual([a.name, b.name].sort());

    // Fairness: Small's imports, though the newest, did not wait for Big's 100.
    const order = await stack.db.session.findMany({
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      select: { company: { select: { name: true } } },
    });
    const lastSmall = order.map((s) => s.company.name).lastIndexOf("Small");
    expect(lastSmall).toBeLessThan(60);
  }, 180_000);
});

describe("the OpenAI request rate is one limit for the whole fleet", () => {
  const SESSIONS = 24;
  const RATE = 4;
  let stack: TestStack;
  let openai: OpenAIStandIn;
  const processes: WorkerProcess[] = [];

  beforeAll(async () => {
    openai = await startOpenAIStandIn({ behaviour: { latencyMs: 50 } });
    stack = await startTestStack({
      env: {
        ANALYSIS_MODE: "direct",
        OPENAI_BASE_URL: openai.url,
        OPENAI_REQUESTS_PER_SECOND: String(RATE),
        ANALYSIS_MAX_CONCURRENT: "8",
        SESSION_PROCESSING_BATCH_SIZE: "10",
      },
    });
    const company = await stack.db.company.create({
      data: { name: "Rate", csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    await seedAnalysableSessions(stack, company.id, SESSIONS);
  });

  afterAll(async () => {
    for (const worker of processes)
      if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
    await stack?.close();
    await openai?.close();
  });

  it("two session-processing processes together stay within OPENAI_REQUESTS_PER_SECOND", async () => {
    for (const name of ["rate-a", "rate-b"]) {
      const worker = await spawnWorkerProcess(name, stack.env, ["--scheduler=session-processing"]);
      processes.push(worker);
      await worker.waitReady();
    }
    const seqBefore = openai.requestLog().at(-1)?.seq ?? 0;
    const { result, workflowId } =
      await stack.run<RunSummary<SessionProcessingCounts>>("session-processing");
    expect(result.counts).toMatchObject({ queued: SESSIONS, analysed: SESSIONS, failed: 0 });

    const calls = openai
      .requestLog()
      .filter((e) => e.seq > seqBefore && e.route === "POST /v1/chat/completions")
      .map((e) => e.at);
    expect(calls).toHaveLength(SESSIONS);
    // Unlimited, 16 slots would send all 24 within a fraction of a second. Limited: a burst of
    // up to two seconds' worth, then RATE a second; less 0.25 s, as the bucket refills while the
    // burst goes out (3.961 s was seen against the 4 s of the bare arithmetic).
    const spanSeconds = ((calls.at(-1) ?? 0) - (calls[0] ?? 0)) / 1000;
    expect(spanSeconds).toBeGreaterThanOrEqual((SESSIONS - 2 * RATE) / RATE - 0.25);

    // Temporal's limiter dispatches the analysis tasks at RATE per second across both processes,
    // after a first burst of up to two seconds' worth (seen here: 8 at once, then 4, 3, 2, ...
    // a second): the server's start times of the activities.
    const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = new Map<string, string>();
    const dispatched: { at: number; identity: string }[] = [];
    for (const event of history.events ?? []) {
      const attrs = event.activityTaskScheduledEventAttributes;
      if (attrs) scheduled.set(String(event.eventId), attrs.activityType?.name ?? "");
      const started = event.activityTaskStartedEventAttributes;
      if (started && scheduled.get(String(started.scheduledEventId)) === "requestAnalysis") {
        dispatched.push({
          at: Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6,
          identity: started.identity?.split(":")[0] ?? "",
        });
      }
    }
    expect(dispatched).toHaveLength(SESSIONS);
    for (const { at: start } of dispatched) {
      const inTwoSeconds = dispatched.filter((d) => d.at >= start && d.at < start + 2_000).length;
      expect(inTwoSeconds).toBeLessThanOrEqual(2 * RATE + 2 * RATE);
    }
    // Both processes made model calls: the limit is global, not per process.
    const callers = new Set(dispatched.map((d) => d.identity));
    expect([...callers].sort()).toEqual(["rate-a", "rate-b"]);
  }, 120_000);
});

/** Sessions as import processing leaves them: transcript stored, AI_ANALYSIS pending. */
async function seedAnalysableSessions(stack: TestStack, companyId: string, count: number) {
  for (let i = 0; i < count; i++) {
    await seedAnalysableSession(
      stack.db,
      companyId,
      [`User: How do I book leave? (${i})`, "Assistant: Through the HR portal."],
      `rate-${i}`,
    );
  }
}

describe("one source host is never hammered", () => {
  const COMPANIES = 12;
  const LIMIT = 2;
  let stack: TestStack;
  let source: TestHttpServer;
  let active = 0;
  let maxActive = 0;

  beforeAll(async () => {
    source = await startHttpServer(async (_req, res) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await new Promise((resolve) => setTimeout(resolve, 300));
      res
        .writeHead(200, { "content-type": "text/csv" })
        .end("h-1,01.05.2025 08:00:00,01.05.2025 08:01:00\n");
      active -= 1;
    });
    stack = await startTestStack({
      env: {
        FETCH_MAX_PER_HOST: String(LIMIT),
        FETCH_HOST_WAIT_MS: "2000",
        CSV_IMPORT_MAX_CONCURRENT: "6",
        CSV_IMPORT_BATCH_SIZE: "4",
      },
    });
    await stack.db.company.createMany({
      data: Array.from({ length: COMPANIES }, (_, i) => ({
        name: `Host ${i}`,
        csvUrl: `${source.url}/c${i}.csv`,
      })),
    });
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("two worker sets with 12 slots between them fetch at most FETCH_MAX_PER_HOST at once from one host, and every company is imported", async () => {
    // Two workers of the same type, each with its own limiter instance: only PostgreSQL is shared.
    await stack.startWorkers(["csv-import"]);
    await stack.startWorkers(["csv-import"]);
    const { result } = await stack.run<RunSummary<CsvImportRunCounts>>("csv-import");

    expect(result.counts).toMatchObject({ companies: COMPANIES, imported: COMPANIES, failed: 0 });
    expect(await stack.db.sessionImport.count()).toBe(COMPANIES);
    expect(maxActive).toBe(LIMIT);
    // Every slot was given back.
    expect(await stack.db.fetchHostSlot.count()).toBe(0);
  }, 120_000);
});
