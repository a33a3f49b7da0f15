import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../api/app.ts";
import type { HealthReport } from "../lib/scheduler-status.ts";
import { WORKER_TYPES } from "../lib/schedulers.ts";
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

  const health = async (method = "GET") => {
    const { config, client, db } = stack;
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
      if (csvOk) {
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
    expect(body).toMatchObject({
      healthy: true,
      status: "healthy",
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      schedulers: { total: schedulerCount, running: schedulerCount, errors: 0 },
    });
    // The documented fields, plus what waits for the scheduler beside them.
    expect(body?.details["csv-import"]).toEqual({
      status: "RUNNING",
      healthy: true,
      lastSuccess: run.finishedAt?.toISOString(),
      backlog: { waiting: 1, oldestAgeSeconds: expect.any(Number), lagObjectiveSeconds: 3600 },
    });
    // A scheduler that has not run yet is RUNNING with no lastSuccess; the CSV row waits for it.
    expect(body?.details["import-processing"]).toEqual({
      status: "RUNNING",
      healthy: true,
      lastSuccess: null,
      backlog: { waiting: 1, oldestAgeSeconds: expect.any(Number), lagObjectiveSeconds: 3600 },
    });
  });

  it("turns a stage ERROR while its oldest item waits past the lag objective, and back when it drains", async () => {
    const { config, client, db } = stack;
    const strict = { ...config, scheduler: { ...config.scheduler, backlogLagObjectiveMs: 60_000 } };
    const lagHealth = async () => {
      const app = createApp({ config: strict, client, db, log: silentLog });
      const response = await app.request("/api/admin/schedulers/health");
      return { status: response.status, body: (await response.json()) as HealthReport };
    };
    // The import from the run above has waited two minutes.
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
        /backlog lag: 1 item\(s\) waiting, the oldest for 1[12]\d s \(objective 60 s\)/,
      ),
      backlog: { waiting: 1, lagObjectiveSeconds: 60 },
    });

    await stack.run("import-processing");
    const drained = await lagHealth();
    expect(drained.body.details["import-processing"]).toMatchObject({
      status: "RUNNING",
      backlog: { waiting: 0, oldestAgeSeconds: 0 },
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
      schedulers: { total: schedulerCount, running: schedulerCount - 1, errors: 0 },
      details: { "csv-import": { status: "PAUSED", healthy: true } },
    });
    await stack.client.schedule.getHandle(scheduleId).unpause("back");
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
      schedulers: { total: schedulerCount, running: schedulerCount - 1, errors: 1 },
      details: { "csv-import": { status: "ERROR", healthy: false } },
    });
    // lastSuccess still points at the last good run.
    expect(failing.body?.details["csv-import"]?.lastSuccess).not.toBeNull();
    expect((await health("HEAD")).status).toBe(503);

    csvOk = true;
    await stack.run("csv-import");
    expect((await health()).status).toBe(200);
  });
});
