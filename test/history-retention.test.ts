import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../adapters/config.ts";
import { createApp } from "../api/app.ts";
import { reconcileSchedules } from "../control-plane/schedule-reconcile.ts";
import {
  maintenanceDefinitions,
  schedulerDefinitions,
} from "../control-plane/scheduler-registry.ts";
import type { HistoryRetentionCounts } from "../workflows/history-retention.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  silentLog,
  startTestStack,
  type TestStack,
  testEnv,
  triggerAndWait,
  waitFor,
} from "./support/harness.ts";

const DAY_MS = 86_400_000;
const BATCH = 7;

/**
 * History retention as the platform runs it: the batch-processing worker creates the daily
 * schedule, its run deletes finished runs, audit entries and settled notifications older than
 * SCHEDULER_HISTORY_RETENTION_DAYS in batches, and keeps newer rows, RUNNING runs and messages
 * still waiting for delivery (real Temporal dev server and PostgreSQL).
 */
describe("history retention", () => {
  let stack: TestStack;
  const ago = (days: number) => new Date(Date.now() - days * DAY_MS);
  const retentionDef = () => {
    const def = maintenanceDefinitions(stack.config)[0];
    if (!def) throw new Error("no history-retention schedule");
    return def;
  };

  beforeAll(async () => {
    stack = await startTestStack({
      env: {
        SCHEDULER_HISTORY_RETENTION_DAYS: "30",
        SCHEDULER_HISTORY_RETENTION_BATCH_SIZE: String(BATCH),
        ADMIN_API_TOKEN: "test-admin-token-retention-01",
      },
    });
  });

  afterAll(async () => {
    await stack?.close();
  });

  async function seed() {
    const run = (i: number, finished: Date | null, started: Date) => ({
      schedulerId: "csv-import",
      scheduleId: stack.defs["csv-import"]?.scheduleId ?? "",
      workflowId: `seeded-${i}`,
      runId: `run-${i}`,
      startedAt: started,
      finishedAt: finished,
      durationMs: finished ? 1000 : null,
      outcome: finished
        ? i % 3 === 0
          ? ("FAILED" as const)
          : ("SUCCEEDED" as const)
        : ("RUNNING" as const),
    });
    await stack.db.schedulerRun.createMany({
      data: [
        // 40 finished 31-70 days ago: deleted.
        ...Array.from({ length: 40 }, (_, i) => run(i, ago(31 + i), ago(31 + i))),
        // 5 finished 1-29 days ago: kept.
        ...Array.from({ length: 5 }, (_, i) => run(100 + i, ago(1 + i * 7), ago(1 + i * 7))),
        // 3 RUNNING runs that started 60 days ago: never deleted.
        ...Array.from({ length: 3 }, (_, i) => run(200 + i, null, ago(60 + i))),
      ],
    });
    const action = (i: number, at: Date) => ({
      schedulerId: "csv-import",
      scheduleId: "livedash-csv-import",
      action: "pause",
      actor: `seeded-${i}`,
      createdAt: at,
    });
    await stack.db.schedulerAction.createMany({
      data: [
        ...Array.from({ length: 20 }, (_, i) => action(i, ago(31 + i))),
        ...Array.from({ length: 3 }, (_, i) => action(100 + i, ago(i))),
      ],
    });
    const note = (at: Date, state: "delivered" | "failed" | "pending") => ({
      scheduleId: "livedash-csv-import",
      payload: { seeded: true, state },
      createdAt: at,
      deliveredAt: state === "delivered" ? at : null,
      failedAt: state === "failed" ? at : null,
    });
    await stack.db.alertNotification.createMany({
      data: [
        ...Array.from({ length: 10 }, (_, i) => note(ago(40 + i), "delivered")),
        ...Array.from({ length: 2 }, (_, i) => note(ago(40 + i), "failed")),
        // Old but still waiting for delivery: kept.
        ...Array.from({ length: 3 }, (_, i) => note(ago(40 + i), "pending")),
        ...Array.from({ length: 2 }, (_, i) => note(ago(2 + i), "delivered")),
      ],
    });
  }

  it("the schedule exists after the worker starts; a run deletes old history in batches, keeps newer rows, RUNNING runs and undelivered messages, and a second run deletes nothing", async () => {
    await seed();
    await stack.startWorkers(["batch-processing"]);
    const def = retentionDef();
    const schedule = await waitFor("the history-retention schedule", () =>
      stack.client.schedule
        .getHandle(def.scheduleId)
        .describe()
        .catch(() => undefined),
    );
    expect(schedule.action).toMatchObject({
      type: "startWorkflow",
      workflowType: "historyRetentionWorkflow",
      taskQueue: stack.defs["batch-processing"]?.taskQueue,
    });
    expect(schedule.state.paused).toBe(false);

    const first = await triggerAndWait<RunSummary<HistoryRetentionCounts>>(
      stack.client,
      def.scheduleId,
    );
    expect(first.result.outcome).toBe("SUCCEEDED");
    expect(first.result.counts).toMatchObject({ runs: 40, actions: 20, notifications: 12 });
    // Batches of 7: 6 for the runs (the last short), 3 for the actions, 2 for the notifications.
    expect(first.result.counts.batches).toBe(6 + 3 + 2);
    expect(Date.parse(first.result.counts.olderThan)).toBeLessThanOrEqual(Date.now() - 30 * DAY_MS);

    const seededRuns = await stack.db.schedulerRun.findMany({
      where: { workflowId: { startsWith: "seeded-" } },
      select: { workflowId: true, outcome: true },
    });
    expect(seededRuns.map((r) => r.workflowId).sort()).toEqual(
      [100, 101, 102, 103, 104, 200, 201, 202].map((i) => `seeded-${i}`).sort(),
    );
    expect(seededRuns.filter((r) => r.outcome === "RUNNING")).toHaveLength(3);
    expect(await stack.db.schedulerAction.count()).toBe(3);
    const notes = await stack.db.alertNotification.findMany({ select: { payload: true } });
    expect(notes.map((n) => (n.payload as { state: string }).state).sort()).toEqual([
      "delivered",
      "delivered",
      "pending",
      "pending",
      "pending",
    ]);

    // The retention run is recorded like any run.
    const recorded = await stack.db.schedulerRun.findFirst({
      where: { workflowId: first.workflowId },
    });
    expect(recorded).toMatchObject({ schedulerId: "history-retention", outcome: "SUCCEEDED" });

    // Idempotent: nothing left to delete.
    const second = await triggerAndWait<RunSummary<HistoryRetentionCounts>>(
      stack.client,
      def.scheduleId,
    );
    expect(second.result.counts).toMatchObject({
      runs: 0,
      actions: 0,
      notifications: 0,
      batches: 3,
    });
    expect(
      await stack.db.schedulerRun.count({ where: { workflowId: { startsWith: "seeded-" } } }),
    ).toBe(8);
  }, 120_000);

  it("is a maintenance schedule beside the schedulers: health keeps its schedulers, and the schedule is no orphan", async () => {
    const app = createApp({
      config: stack.config,
      client: stack.client,
      db: stack.db,
      log: silentLog,
    });
    const health = (await (await app.request("/api/admin/schedulers/health")).json()) as {
      schedulers: { total: number };
      details: Record<string, unknown>;
      orphans?: { scheduleId: string }[];
    };
    expect(Object.keys(health.details).sort()).toEqual(
      schedulerDefinitions(stack.config)
        .map((d) => d.id)
        .sort(),
    );
    expect(health.schedulers.total).toBe(schedulerDefinitions(stack.config).length);
    expect((health.orphans ?? []).map((o) => o.scheduleId)).not.toContain(
      retentionDef().scheduleId,
    );
  });

  it("SCHEDULER_HISTORY_RETENTION_DAYS=0 keeps history forever (the schedule is removed); a negative value stops startup naming the variable", async () => {
    const keepForever = loadConfig(
      testEnv(stack.databaseUrl, {
        REGION: stack.config.region ?? "",
        SCHEDULER_HISTORY_RETENTION_DAYS: "0",
      }),
    );
    const defs = maintenanceDefinitions(keepForever);
    expect(defs[0]?.scheduleId).toBe(retentionDef().scheduleId);
    expect(defs[0]?.enabled).toBe(false);
    await reconcileSchedules(stack.client, defs);
    await expect(
      stack.client.schedule.getHandle(retentionDef().scheduleId).describe(),
    ).rejects.toThrow();

    for (const bad of ["-1", "1.5", "thirty"]) {
      let problem: unknown;
      try {
        loadConfig(testEnv(stack.databaseUrl, { SCHEDULER_HISTORY_RETENTION_DAYS: bad }));
      } catch (error) {
        problem = error;
      }
      expect(problem).toBeInstanceOf(ConfigError);
      expect(String((problem as Error).message)).toContain(
        `SCHEDULER_HISTORY_RETENTION_DAYS: expected an integer from 0 to 36500, got "${bad}"`,
      );
    }
  });
});
