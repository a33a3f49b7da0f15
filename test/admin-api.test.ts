import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../api/app.ts";
import type { SchedulerView } from "../control-plane/admin-service.ts";
import { reconcileSchedule } from "../control-plane/schedule-reconcile.ts";
import { schedulerDefinitions } from "../control-plane/scheduler-registry.ts";
import {
  type HealthReport,
  schedulerStatus,
  statusOptionsFor,
} from "../control-plane/scheduler-status.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import type { RunningWorkers } from "../workers/runtime.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  testConfig,
  waitFor,
} from "./support/harness.ts";

const TOKEN = "test-admin-token-0123456789";

describe("admin API", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let workers: RunningWorkers;
  let hang = false;

  const call = async (
    path: string,
    init: {
      method?: string;
      body?: unknown;
      token?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) => {
    const app = createApp({
      config: stack.config,
      client: stack.client,
      db: stack.db,
      log: silentLog,
    });
    const headers: Record<string, string> = { ...init.headers };
    if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const response = await app.request(path, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers,
      ...(init.body !== undefined
        ? { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }
        : {}),
    });
    const text = await response.text();
    // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
  };
  const act = (body: Record<string, unknown>, actor?: string) =>
    call("/api/admin/schedulers", {
      body,
      ...(actor ? { headers: { "x-livedash-actor": actor } } : {}),
    });
  const scheduler = async (id: string): Promise<SchedulerView> =>
    (await call(`/api/admin/schedulers/${id}`)).body.data;

  beforeAll(async () => {
    source = await startHttpServer((_req, res) => {
      if (hang) return; // a run that never finishes, to be terminated
      res
        .writeHead(200, { "content-type": "text/csv" })
        .end("a-1,01.05.2025 08:00:00,01.05.2025 08:01:00\n");
    });
    stack = await startTestStack({
      env: {
        ADMIN_API_TOKEN: TOKEN,
        SCHEDULER_INSTANCE_ID: "admin-test",
        CSV_IMPORT_TIMEOUT: "60000",
      },
    });
    await stack.db.company.create({ data: { name: "Admin Co", csvUrl: `${source.url}/a.csv` } });
    workers = await stack.startWorkers(WORKER_TYPES);
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("refuses missing and wrong tokens; health, probes and the OpenAPI document stay open", async () => {
    const missing = await call("/api/admin/schedulers", { token: null });
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    expect(
      (await call("/api/admin/schedulers", { token: "wrong-token-but-long-enough" })).status,
    ).toBe(401);
    expect((await call("/api/admin/schedulers")).status).toBe(200);
    expect(
      (await call("/api/admin/schedulers", { body: { action: "stopAll" }, token: null })).status,
    ).toBe(401);
    // The dashboard's cookie carries the same token.
    expect(
      (
        await call("/api/admin/schedulers", {
          token: null,
          headers: { cookie: `livedash_admin=${TOKEN}` },
        })
      ).status,
    ).toBe(200);
    expect((await call("/api/admin/schedulers/health", { token: null })).status).toBe(200);
    expect((await call("/livez", { token: null })).body).toEqual({ status: "ok" });
    const ready = await call("/readyz", { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual([
      { name: "temporal", ok: true },
      { name: "postgres", ok: true },
    ]);
    const doc = await call("/api/openapi.json", { token: null });
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths).sort()).toEqual([
      "/api/admin/companies/health",
      "/api/admin/orphaned-schedules",
      "/api/admin/schedulers",
      "/api/admin/schedulers/health",
      "/api/admin/schedulers/{id}",
      "/api/admin/schedulers/{id}/runs",
      "/api/admin/schedulers/{id}/runs/{workflowId}",
      "/livez",
      "/readyz",
    ]);
    expect(doc.body.components.schemas.SchedulerAction.properties.action.enum).toContain(
      "backfill",
    );
  });

  it("lists every scheduler with spec, policies, state, next runs, workers and run metrics", async () => {
    await stack.run("csv-import");
    const { status, body } = await call("/api/admin/schedulers");
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(["data"]);
    const list = body.data as SchedulerView[];
    expect(list.map((s) => s.id)).toEqual(Object.keys(stack.defs));
    const csv = list.find((s) => s.id === "csv-import");
    expect(csv).toMatchObject({
      name: "CSV import",
      scheduleId: stack.defs["csv-import"]?.scheduleId,
      taskQueue: stack.defs["csv-import"]?.taskQueue,
      spec: { cron: "0 0 1 1 *", timeZone: "UTC" },
      policies: { overlap: "SKIP", catchupWindowMs: 60_000 },
      state: "RUNNING",
      healthy: true,
      pause: { paused: false, note: null, by: null, at: null },
      metrics: { runs: 1, successes: 1, failures: 0, successRate: 1 },
    });
    expect(csv?.nextRuns[0]).toMatch(/-01-01T00:00:00.000Z$/);
    expect(csv?.lastRuns[0]).toMatchObject({ outcome: "SUCCEEDED", counts: { inserted: 1 } });
    expect(csv?.metrics.p95DurationMs).toBeGreaterThan(0);
    // Runs Temporal did not start, and how late the started one began (start minus scheduled).
    const described = await stack.client.schedule.getHandle(csv?.scheduleId ?? "").describe();
    expect(csv?.actions).toEqual({
      skippedOverlap: described.info.numActionsSkippedOverlap,
      missedCatchupWindow: described.info.numActionsMissedCatchupWindow,
    });
    const run = await stack.db.schedulerRun.findFirstOrThrow({
      where: { scheduleId: csv?.scheduleId ?? "" },
    });
    const lateMs = (run.startedAt.getTime() - (run.scheduledAt?.getTime() ?? 0)) | 0;
    expect(csv?.metrics).toMatchObject({
      lastLatenessMs: Math.max(0, lateMs),
      avgLatenessMs: Math.max(0, lateMs),
      p95LatenessMs: Math.max(0, lateMs),
    });
    expect(csv?.workers.map((w) => w.identity)).toContain("admin-test:csv-import");
    expect(csv?.temporalUiUrl).toBe(
      `http://localhost:8233/namespaces/${stack.config.temporal.namespace}/schedules/${csv?.scheduleId}`,
    );
  });

  it("validates bodies and identifiers: 400 naming the field, 404 for an unknown scheduler, 413 for a large body", async () => {
    const bad = await act({ action: "explode" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
    expect(bad.body.error.issues[0].path).toBe("action");

    expect((await act({ action: "pause" })).body.error.issues).toEqual([
      { path: "schedulerId", message: "required for pause" },
    ]);
    const backwards = await act({
      action: "backfill",
      schedulerId: "csv-import",
      start: "2025-01-02T00:00:00Z",
      end: "2025-01-01T00:00:00Z",
    });
    expect(backwards.body.error.issues).toEqual([{ path: "end", message: "must be after start" }]);
    expect((await act({ action: "pause", schedulerId: "csv-import", colour: "red" })).status).toBe(
      400,
    );
    expect(
      (await act({ action: "trigger", schedulerId: "csv-import", overlap: "SOMETIMES" })).status,
    ).toBe(400);
    expect((await call("/api/admin/schedulers", { body: "{not json" })).status).toBe(400);

    const unknown = await act({ action: "pause", schedulerId: "no-such-scheduler" });
    expect(unknown).toEqual({
      status: 404,
      body: { error: { code: "not_found", message: 'unknown scheduler "no-such-scheduler"' } },
    });
    expect((await call("/api/admin/schedulers/NOT_AN_ID!/runs")).status).toBe(400);
    expect((await call("/api/admin/schedulers/no-such-scheduler/runs")).status).toBe(404);
    expect((await call("/api/admin/schedulers/csv-import/runs?limit=0")).status).toBe(400);
    expect((await call("/api/admin/schedulers/csv-import/runs?before=garbage")).status).toBe(400);

    const huge = await act({
      action: "pause",
      schedulerId: "csv-import",
      note: "x".repeat(20_000),
    });
    expect(huge.status).toBe(413);
  });

  it("pause and resume with a note; the list shows who paused and when; health shows PAUSED", async () => {
    const paused = await act(
      { action: "pause", schedulerId: "import-processing", note: "upstream maintenance" },
      "alice",
    );
    expect(paused).toEqual({
      status: 200,
      body: { data: [{ schedulerId: "import-processing", action: "pause", state: "PAUSED" }] },
    });
    const described = await stack.client.schedule
      .getHandle(stack.defs["import-processing"]?.scheduleId ?? "")
      .describe();
    expect(described.state).toMatchObject({ paused: true, note: "upstream maintenance" });
    const view = await scheduler("import-processing");
    expect(view.pause).toMatchObject({ paused: true, note: "upstream maintenance", by: "alice" });
    expect(view.nextRuns).toEqual([]);
    const health = (await call("/api/admin/schedulers/health")).body as HealthReport;
    expect(health.details["import-processing"]?.status).toBe("PAUSED");

    // Resumed: STARTING until its first run since the resume (no false alarm meanwhile).
    expect(
      (await act({ action: "resume", schedulerId: "import-processing", note: "done" })).body.data[0]
        .state,
    ).toBe("STARTING");
    expect((await scheduler("import-processing")).pause.paused).toBe(false);
    const audit = await stack.db.schedulerAction.findMany({
      where: { schedulerId: "import-processing" },
      orderBy: { createdAt: "asc" },
    });
    expect(audit.map((a) => [a.action, a.actor, a.note])).toEqual([
      ["pause", "alice", "upstream maintenance"],
      ["resume", "admin-api", "done"],
    ]);
  });

  it("a pause made in the Temporal UI shows who and when, from Temporal's own record", async () => {
    const def = stack.defs["batch-processing"];
    if (!def) throw new Error("batch-processing missing");
    // The request the Temporal UI sends (PatchSchedule with its user's identity).
    const before = Date.now();
    await stack.client.workflowService.patchSchedule({
      namespace: stack.config.temporal.namespace,
      scheduleId: def.scheduleId,
      identity: "carol@example.com",
      requestId: `ui-${Date.now()}`,
      patch: { pause: "paused in the Temporal UI" },
    });
    const view = await scheduler("batch-processing");
    expect(view.pause).toMatchObject({
      paused: true,
      note: "paused in the Temporal UI",
      by: "carol@example.com",
    });
    const at = Date.parse(view.pause.at ?? "");
    expect(at).toBeGreaterThanOrEqual(before - 1000);
    expect(at).toBeLessThanOrEqual(Date.now());
    await stack.client.schedule.getHandle(def.scheduleId).unpause("done");
  });

  it("shows the live spec from Temporal and flags drift until reconcile puts it back", async () => {
    const def = stack.defs["batch-status"];
    if (!def) throw new Error("batch-status missing");
    const handle = stack.client.schedule.getHandle(def.scheduleId);
    await handle.update((previous) => ({
      ...previous,
      spec: { cronExpressions: ["*/15 * * * *"], timezone: "UTC" },
    }));
    const edited = await scheduler("batch-status");
    expect(edited).toMatchObject({
      spec: { cron: "*/15 * * * *", timeZone: "UTC" },
      configuredSpec: { cron: "0 0 1 1 *", timeZone: "UTC" },
      drift: ["spec"],
      reason: expect.stringContaining("the live schedule spec differs from the configuration"),
    });
    expect(edited.nextRuns[0]).toMatch(/:(00|15|30|45):00\.000Z$/);
    await reconcileSchedule(stack.client, def);
    expect(await scheduler("batch-status")).toMatchObject({
      spec: { cron: "0 0 1 1 *", timeZone: "UTC" },
      drift: [],
    });
  });

  it("reports orphaned schedules in the admin API and in health", async () => {
    const old = schedulerDefinitions(
      testConfig(stack.databaseUrl, { REGION: `${stack.config.region}gone` }),
    ).find((d) => d.id === "csv-import");
    if (!old) throw new Error("csv-import missing");
    await reconcileSchedule(stack.client, old);
    try {
      const orphans = await waitFor("the orphan is listed", async () => {
        const { body } = await call("/api/admin/orphaned-schedules");
        const list = body.data as { scheduleId: string }[];
        return list.some((o) => o.scheduleId === old.scheduleId) ? list : undefined;
      });
      expect(orphans.find((o) => o.scheduleId === old.scheduleId)).toMatchObject({
        schedulerId: "csv-import",
        taskQueue: old.taskQueue,
        paused: false,
        reason: `not in this deployment's configuration and no worker polls ${old.taskQueue}`,
      });
      const health = (await call("/api/admin/schedulers/health")).body as HealthReport;
      expect(health.orphans).toContainEqual({
        scheduleId: old.scheduleId,
        reason: expect.stringContaining("no worker polls"),
      });
      expect(health.status).toBe("degraded");
    } finally {
      await stack.client.schedule
        .getHandle(old.scheduleId)
        .delete()
        .catch(() => undefined);
    }
  });

  it("trigger runs now with the schedule's policy; backfill runs the missed times of a range", async () => {
    const before = await stack.db.schedulerRun.count({ where: { schedulerId: "csv-import" } });
    const triggered = await act({ action: "trigger", schedulerId: "csv-import" });
    expect(triggered.body.data[0].detail).toBe("triggered with overlap policy SKIP");
    // The yearly test schedule fires at 00:00 on January 1st: a range around 2020's runs once.
    const backfill = await act({
      action: "backfill",
      schedulerId: "csv-import",
      start: "2019-12-31T23:59:00Z",
      end: "2020-01-01T00:01:00Z",
    });
    expect(backfill.status).toBe(200);
    await expect
      .poll(
        async () =>
          stack.db.schedulerRun.count({
            where: { schedulerId: "csv-import", finishedAt: { not: null } },
          }),
        { timeout: 20_000 },
      )
      .toBe(before + 2);
    const backfilled = await stack.db.schedulerRun.findFirst({
      where: { scheduledAt: new Date("2020-01-01T00:00:00Z") },
    });
    expect(backfilled?.outcome).toBe("SUCCEEDED");
  });

  it("paginates run history", async () => {
    const first = await call("/api/admin/schedulers/csv-import/runs?limit=2");
    expect(first.body.data.runs).toHaveLength(2);
    expect(first.body.data.nextCursor).toEqual(expect.any(String));
    const second = await call(
      `/api/admin/schedulers/csv-import/runs?limit=2&before=${first.body.data.nextCursor}`,
    );
    const all = await call("/api/admin/schedulers/csv-import/runs?limit=200");
    expect(
      [...first.body.data.runs, ...second.body.data.runs].map((r: { runId: string }) => r.runId),
    ).toEqual(
      all.body.data.runs
        .slice(0, first.body.data.runs.length + second.body.data.runs.length)
        .map((r: { runId: string }) => r.runId),
    );
  });

  it("records a run that was terminated before it could record its own outcome", async () => {
    hang = true;
    const handle = stack.client.schedule.getHandle(stack.defs["csv-import"]?.scheduleId ?? "");
    const seen = new Set(
      (await handle.describe()).info.recentActions.map((a) => a.action.workflow.workflowId),
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await handle.trigger("SKIP");
    let workflowId: string | undefined;
    await expect
      .poll(async () => {
        workflowId = (await handle.describe()).info.recentActions
          .map((a) => a.action.workflow.workflowId)
          .find((id) => !seen.has(id));
        return workflowId;
      })
      .toBeDefined();
    await expect
      .poll(() => stack.db.schedulerRun.count({ where: { workflowId, outcome: "RUNNING" } }))
      .toBe(1);
    // A tick while this run still runs is skipped by the SKIP policy: the admin API and health
    // say so, from Temporal's counts.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await handle.trigger("SKIP");
    await expect
      .poll(async () => (await scheduler("csv-import")).skipped.overlap, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    const skippedHealth = (await call("/api/admin/schedulers/health")).body as HealthReport;
    expect(skippedHealth.details["csv-import"]?.reason).toMatch(
      /Temporal: \d+ run\(s\) skipped by the overlap policy/,
    );
    await stack.client.workflow.getHandle(workflowId ?? "").terminate("operator killed it");
    hang = false;

    await expect
      .poll(
        async () => {
          const runs = await call("/api/admin/schedulers/csv-import/runs?limit=50");
          return runs.body.data.runs.find(
            (r: { workflowId: string }) => r.workflowId === workflowId,
          )?.outcome;
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBe("CANCELLED");
    const row = await stack.db.schedulerRun.findFirstOrThrow({ where: { workflowId } });
    expect(row.error).toContain("terminated");
    expect(row.finishedAt).toBeInstanceOf(Date);
  });

  it("stop persists across a worker restart; start brings the schedule back", async () => {
    const stopped = await act(
      { action: "stop", schedulerId: "session-processing", note: "not needed today" },
      "bob",
    );
    expect(stopped.body.data[0].state).toBe("STOPPED");
    let health = (await call("/api/admin/schedulers/health")).body as HealthReport;
    expect(health.details["session-processing"]).toMatchObject({
      status: "STOPPED",
      healthy: true,
    });

    // A restarted worker reconciles its schedules, but leaves the stopped one stopped.
    await workers.shutdown();
    workers = await stack.startWorkers(WORKER_TYPES);
    expect((await scheduler("session-processing")).state).toBe("STOPPED");

    // Pause, resume, trigger and backfill need the schedule: on a stopped one, 409 and why.
    for (const action of ["pause", "resume", "trigger"]) {
      expect(await act({ action, schedulerId: "session-processing" })).toEqual({
        status: 409,
        body: {
          error: {
            code: "conflict",
            message: `scheduler "session-processing" is stopped (its schedule does not exist): start it before ${action}`,
          },
        },
      });
    }
    const backfill = await act({
      action: "backfill",
      schedulerId: "session-processing",
      start: "2019-12-31T23:59:00Z",
      end: "2020-01-01T00:01:00Z",
    });
    expect(backfill.status).toBe(409);

    expect(
      (await act({ action: "start", schedulerId: "session-processing" })).body.data[0].state,
    ).toBe("STARTING");
    health = (await call("/api/admin/schedulers/health")).body as HealthReport;
    expect(health.details["session-processing"]?.status).toBe("STARTING");

    const all = await act({ action: "stopAll" });
    expect(all.body.data.map((r: { state: string }) => r.state)).toEqual(
      Object.keys(stack.defs).map(() => "STOPPED"),
    );
    const restarted = await act({ action: "startAll" });
    // Freshly created schedules: STARTING until their first run, never a false ERROR.
    expect(restarted.body.data.map((r: { state: string }) => r.state)).toEqual(
      Object.keys(stack.defs).map(() => "STARTING"),
    );
  });

  it("dead man's switch: no success for the configured number of intervals turns ERROR", async () => {
    const strict = testConfig(stack.databaseUrl, {
      SCHEDULER_DEADMAN_INTERVALS: "1",
      REGION: stack.config.region ?? "",
    });
    // The yearly test schedule's last success was a year and a half ago: more than one interval.
    await stack.db.schedulerRun.updateMany({
      where: { scheduleId: stack.defs["batch-status"]?.scheduleId },
      data: { finishedAt: new Date("2020-01-01T00:00:00Z") },
    });
    await stack.db.schedulerRun.create({
      data: {
        schedulerId: "batch-status",
        scheduleId: stack.defs["batch-status"]?.scheduleId ?? "",
        workflowId: "old-run",
        runId: "old-run",
        startedAt: new Date("2025-06-01T00:00:00Z"),
        finishedAt: new Date("2025-06-01T00:00:01Z"),
        outcome: "SUCCEEDED",
      },
    });
    // The schedule was (re)created moments ago by startAll: the switch counts from then, so
    // it fires only once an interval has passed since. Evaluated two years from now:
    const def = stack.defs["batch-status"];
    if (!def) throw new Error("batch-status missing");
    const created = (await stack.client.schedule.getHandle(def.scheduleId).describe()).info
      .createdAt;
    const later = new Date(created.getTime() + 2 * 366 * 24 * 3_600_000);
    // (Workers keep polling meanwhile: the poll check is not what is tested here.)
    const polling = { now: later, workerStaleMs: 3 * 366 * 24 * 3_600_000 };
    const status = await schedulerStatus(
      { ...statusOptionsFor(strict, stack.client, stack.db), ...polling },
      def,
    );
    expect(status).toMatchObject({
      status: "ERROR",
      healthy: false,
      lastSuccess: new Date("2025-06-01T00:00:01.000Z"),
      reason: expect.stringContaining("no successful run for 1 intervals"),
    });
    // The same data under the default of 3 intervals is no ERROR.
    const lenient = await schedulerStatus(
      { ...statusOptionsFor(stack.config, stack.client, stack.db), ...polling },
      def,
    );
    expect(lenient.status).not.toBe("ERROR");
  });

  it("a task queue without a polling worker turns its schedulers ERROR after the stale window", async () => {
    const strict = testConfig(stack.databaseUrl, {
      SCHEDULER_WORKER_STALE_MS: "10000",
      REGION: stack.config.region ?? "",
    });
    await workers.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const app = createApp({ config: strict, client: stack.client, db: stack.db, log: silentLog });
    const response = await app.request("/api/admin/schedulers/health");
    expect(response.status).toBe(503);
    const list = (await (
      await app.request("/api/admin/schedulers", { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as {
      data: SchedulerView[];
    };
    const csv = list.data.find((s) => s.id === "csv-import");
    expect(csv).toMatchObject({ state: "ERROR", healthy: false });
    expect(csv?.reason).toContain(`no worker has polled task queue ${csv?.taskQueue}`);
    workers = await stack.startWorkers(WORKER_TYPES);
  }, 60_000);
});
