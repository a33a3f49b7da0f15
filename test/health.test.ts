import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../adapters/config.ts";
import { connectTemporalClient } from "../adapters/temporal.ts";
import { createApp } from "../api/app.ts";
import { reconcileSchedules } from "../control-plane/schedule-reconcile.ts";
import { schedulerDefinitions } from "../control-plane/scheduler-registry.ts";
import type { HealthReport } from "../control-plane/scheduler-status.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";

describe("GET /api/admin/schedulers/health", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let scheduleId: string;
  let schedulerCount = 0;
  let csvOk = true;

  const health = async (method = "GET", env: Record<string, string> = {}) => {
    const { client, db } = stack;
    const config = loadConfig({ ...stack.env, ...env });
    const app = createApp({ config, client, db, log: silentLog });
    const response = await app.request("/api/admin/schedulers/health", { method });
    const text = await response.text();
    return {
      status: response.status,
      text,
      body: text ? (JSON.parse(text) as HealthReport) : undefined,
    };
  };

  beforeAll(async () => {
    source = await startHttpServer((_req, res) => {
      if (_req.url?.startsWith("/broken")) res.writeHead(403).end("forbidden");
      else if (csvOk) {
        res
          .writeHead(200, { "content-type": "text/csv" })
          .end("h-1,01.05.2025 08:00:00,01.05.2025 08:01:00\n");
      } else res.writeHead(403).end("forbidden");
    });
    stack = await startTestStack({ env: { SCHEDULER_ERROR_THRESHOLD: "3" } });
    await stack.db.company.create({ data: { name: "Health Co", csvUrl: `${source.url}/h.csv` } });
    scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    schedulerCount = Object.keys(stack.defs).length;
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("reports STOPPED with 503 while no schedule exists", async () => {
    const { status, body } = await health();
    expect(status).toBe(503);
    expect(body).toMatchObject({
      healthy: false,
      status: "unhealthy",
      schedulers: { total: schedulerCount, running: 0, errors: schedulerCount },
      details: { "csv-import": { status: "STOPPED", healthy: false, lastSuccess: null } },
    });
    expect(Object.keys(body?.details ?? {}).sort()).toEqual(Object.keys(stack.defs).sort());
  });

  it("reports STARTING while a schedule exists but no worker has polled its task queue yet", async () => {
    await reconcileSchedules(stack.client, schedulerDefinitions(stack.config));
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body).toMatchObject({ healthy: true, status: "degraded" });
    expect(body?.details["csv-import"]).toEqual({
      status: "STARTING",
      healthy: true,
      lastSuccess: null,
      reason: `waiting for a worker to poll task queue ${stack.defs["csv-import"]?.taskQueue}`,
      // Beside the documented fields: the one ACTIVE company waits for the CSV import.
      backlog: { waiting: 1, oldestAgeSeconds: expect.any(Number), lagObjectiveSeconds: 3600 },
    });
  });

  it("reports RUNNING with 200 and lastSuccess after a successful run, in the documented shape", async () => {
    await stack.startWorkers(WORKER_TYPES);
    await stack.run("csv-import");
    const run = await stack.db.schedulerRun.findFirstOrThrow({ where: { scheduleId } });

    const { status, body } = await health();
    expect(status).toBe(200);
    expect(Object.keys(body ?? {}).sort()).toEqual([
      "details",
      "healthy",
      "schedulers",
      "status",
      "timestamp",
    ]);
    // Healthy, but degraded while the other schedulers' first runs are still pending.
    expect(body).toMatchObject({
      healthy: true,
      status: "degraded",
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      schedulers: { total: schedulerCount, running: 1, errors: 0 },
    });
    // The documented fields, plus what waits for the scheduler beside them.
    expect(body?.details["csv-import"]).toEqual({
      status: "RUNNING",
      healthy: true,
      lastSuccess: run.finishedAt?.toISOString(),
      backlog: { waiting: 1, oldestAgeSeconds: expect.any(Number), lagObjectiveSeconds: 3600 },
    });
    // A scheduler that has not run yet is STARTING (its first run pending), not RUNNING; the
    // CSV row waits for it.
    expect(body?.details["import-processing"]).toEqual({
      status: "STARTING",
      healthy: true,
      lastSuccess: null,
      reason: "first run pending (due 2027-01-01T00:00:00.000Z) since the schedule was created",
      backlog: { waiting: 1, oldestAgeSeconds: expect.any(Number), lagObjectiveSeconds: 3600 },
    });
  });

  it("HEAD answers with the status code only", async () => {
    const { status, text } = await health("HEAD");
    expect(status).toBe(200);
    expect(text).toBe("");
  });

  it("shows PAUSED (still 200, degraded) when the schedule is paused in Temporal", async () => {
    await stack.client.schedule.getHandle(scheduleId).pause("maintenance");
    const { status, body } = await health();
    expect(status).toBe(200);
    expect(body).toMatchObject({
      healthy: true,
      status: "degraded",
      schedulers: { total: schedulerCount, running: 0, errors: 0 },
      details: { "csv-import": { status: "PAUSED", healthy: true, reason: "maintenance" } },
    });
    await stack.client.schedule.getHandle(scheduleId).unpause("back");
    // Resumed: STARTING until its first run since the resume, then RUNNING.
    expect((await health()).body?.details["csv-import"]?.status).toBe("STARTING");
    await stack.run("csv-import");
    expect((await health()).body?.details["csv-import"]?.status).toBe("RUNNING");
  });

  it("turns ERROR with 503 after repeated failed runs, and recovers after a success", async () => {
    csvOk = false;
    for (let i = 0; i < 3; i++) {
      const { result } = await stack.run("csv-import");
      expect(result.outcome).toBe("FAILED");
    }
    const failing = await health();
    expect(failing.status).toBe(503);
    expect(failing.body).toMatchObject({
      healthy: false,
      status: "unhealthy",
      schedulers: { total: schedulerCount, running: 0, errors: 1 },
      details: {
        "csv-import": {
          status: "ERROR",
          healthy: false,
          reason: expect.stringContaining("the last 3 runs failed: Health Co:"),
        },
      },
    });
    // lastSuccess still points at the last good run.
    expect(failing.body?.details["csv-import"]?.lastSuccess).not.toBeNull();
    expect((await health("HEAD")).status).toBe(503);
    // CSV_IMPORT_CRITICAL=false (the seed's critical: false): the same ERROR only degrades.
    const tolerant = await health("GET", { CSV_IMPORT_CRITICAL: "false" });
    expect(tolerant.status).toBe(200);
    expect(tolerant.body).toMatchObject({
      healthy: true,
      status: "degraded",
      details: { "csv-import": { status: "ERROR", healthy: false } },
    });

    csvOk = true;
    await stack.run("csv-import");
    expect((await health()).status).toBe(200);
  });

  it("no false ERROR after a long pause: the dead man's switch counts from the resume", async () => {
    const strict = { SCHEDULER_DEADMAN_INTERVALS: "1" };
    // The last success long ago, more than one (yearly) interval; a schedule resumed now has had
    // no chance to run yet: STARTING, not ERROR.
    await stack.db.schedulerRun.updateMany({
      where: { scheduleId },
      data: { finishedAt: new Date("2020-01-01T00:00:00Z") },
    });
    const handle = stack.client.schedule.getHandle(scheduleId);
    await handle.pause("long maintenance");
    await handle.unpause("maintenance over");
    const resumed = await health("GET", strict);
    expect(resumed.status).toBe(200);
    expect(resumed.body?.details["csv-import"]).toMatchObject({
      status: "STARTING",
      healthy: true,
      reason: expect.stringContaining("since the resume"),
    });
    await stack.run("csv-import");
    expect((await health("GET", strict)).body?.details["csv-import"]?.status).toBe("RUNNING");
  });

  it("success means success: PARTIAL runs give a reason, and turn ERROR past the thresholds", async () => {
    const broken = await stack.db.company.create({
      data: { name: "Broken Co", csvUrl: `${source.url}/broken.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("PARTIAL");
    const once = await health();
    expect(once.status).toBe(200);
    expect(once.body?.details["csv-import"]).toMatchObject({
      status: "RUNNING",
      healthy: true,
      reason: expect.stringMatching(/^last run PARTIAL \(1 of 2 companies failed\): Broken Co: /),
    });
    // More than SCHEDULER_FAILED_COMPANIES_PERCENT of the companies failing is an ERROR.
    const strict = await health("GET", { SCHEDULER_FAILED_COMPANIES_PERCENT: "40" });
    expect(strict.status).toBe(503);
    expect(strict.body?.details["csv-import"]).toMatchObject({
      status: "ERROR",
      reason: expect.stringContaining("1 of 2 companies failed in the last run (more than 40%)"),
    });
    // SCHEDULER_PARTIAL_THRESHOLD (3) PARTIAL runs in a row: a company failing for days shows.
    await stack.run("csv-import");
    await stack.run("csv-import");
    const persistent = await health();
    expect(persistent.status).toBe(503);
    expect(persistent.body?.details["csv-import"]).toMatchObject({
      status: "ERROR",
      healthy: false,
      reason: expect.stringMatching(/^the last 3 runs were PARTIAL: Broken Co: /),
    });
    await stack.db.company.delete({ where: { id: broken.id } });
  });

  it("answers within 2 s with every scheduler ERROR while Temporal is unreachable", async () => {
    const env = { ...stack.env, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    const config = loadConfig(env);
    // The client connects lazily: creating it does not need Temporal.
    const down = await connectTemporalClient(config);
    try {
      const app = createApp({ config, client: down.client, db: stack.db, log: silentLog });
      const started = Date.now();
      const response = await app.request("/api/admin/schedulers/health");
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(response.status).toBe(503);
      const body = (await response.json()) as HealthReport;
      for (const detail of Object.values(body.details)) {
        expect(detail).toMatchObject({
          status: "ERROR",
          healthy: false,
          reason: expect.stringMatching(/^Temporal: /),
        });
      }
    } finally {
      await down.connection.close().catch(() => undefined);
    }
  });

  it("turns a stage ERROR while its oldest item waits past the lag objective, and back when it drains", async () => {
    const { config, client, db } = stack;
    const strict = { ...config, scheduler: { ...config.scheduler, backlogLagObjectiveMs: 60_000 } };
    const lagHealth = async () => {
      const app = createApp({ config: strict, client, db, log: silentLog });
      const response = await app.request("/api/admin/schedulers/health");
      return { status: response.status, body: (await response.json()) as HealthReport };
    };
    // The imports of the runs above have waited two minutes.
    await db.sessionImport.updateMany({
      where: { status: "PENDING" },
      data: { createdAt: new Date(Date.now() - 120_000) },
    });
    const late = await lagHealth();
    expect(late.status).toBe(503);
    expect(late.body.details["import-processing"]).toMatchObject({
      status: "ERROR",
      healthy: false,
      reason: expect.stringMatching(
        /backlog lag: \d+ item\(s\) waiting, the oldest for 1[12]\d s \(objective 60 s\)/,
      ),
      backlog: { waiting: expect.any(Number), lagObjectiveSeconds: 60 },
    });

    await stack.run("import-processing");
    const drained = await lagHealth();
    expect(drained.body.details["import-processing"]).toMatchObject({
      status: "RUNNING",
      backlog: { waiting: 0, oldestAgeSeconds: 0 },
    });
  });
});
