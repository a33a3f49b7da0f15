import type { Client } from "@temporalio/client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../adapters/config.ts";
import {
  findOrphanedSchedules,
  removeOrphanedSchedules,
} from "../control-plane/schedule-orphans.ts";
import {
  kickStartSchedules,
  reconcileSchedule,
  reconcileSchedules,
  scheduleDrift,
} from "../control-plane/schedule-reconcile.ts";
import { liveSpec } from "../control-plane/schedule-spec.ts";
import {
  maintenanceDefinitions,
  schedulerDefinitions,
} from "../control-plane/scheduler-registry.ts";
import {
  startTestWorkers,
  testConfig,
  testDatabase,
  testTemporalClient,
  waitFor,
} from "./support/harness.ts";

describe("schedule reconciliation against the Temporal dev server", () => {
  let client: Client;
  let close: () => Promise<void>;
  let config: Config;
  let databaseUrl: string;

  beforeAll(async () => {
    const database = await testDatabase();
    await database.db.$disconnect();
    databaseUrl = database.url;
    config = testConfig(databaseUrl);
    const temporal = await testTemporalClient(config);
    client = temporal.client;
    close = () => temporal.connection.close();
  });

  afterEach(async () => {
    for (const def of [...schedulerDefinitions(config), ...maintenanceDefinitions(config)]) {
      await client.schedule
        .getHandle(def.scheduleId)
        .delete()
        .catch(() => undefined);
    }
  });

  afterAll(async () => close?.());

  const csvImport = (cfg: Config) => {
    const def = schedulerDefinitions(cfg).find((d) => d.id === "csv-import");
    if (!def) throw new Error("csv-import is not registered");
    return def;
  };
  const withEnv = (env: Record<string, string>) =>
    testConfig(databaseUrl, { REGION: config.region ?? "", ...env });

  it("creates the schedule from configuration with its task queue, SKIP overlap and catch-up window", async () => {
    const def = csvImport(
      withEnv({
        CSV_IMPORT_INTERVAL: "*/10 * * * *",
        CSV_IMPORT_BATCH_SIZE: "4",
        CSV_IMPORT_RETRY_INTERVAL_MS: "750",
      }),
    );
    expect(await reconcileSchedule(client, def)).toBe("created");

    const described = await client.schedule.getHandle(def.scheduleId).describe();
    expect(described.state.paused).toBe(false);
    expect(described.policies).toMatchObject({ overlap: "SKIP", catchupWindow: 60_000 });
    expect(described.action).toMatchObject({
      type: "startWorkflow",
      workflowType: "csvImportWorkflow",
      taskQueue: `livedash-csv-import-${config.region}`,
      args: [
        expect.objectContaining({
          schedulerId: "csv-import",
          batchSize: 4,
          fetchTimeoutMs: 300_000,
          retryIntervalMs: 750,
          // Drains: no new work after 90% of the 10-minute interval, 200 fetches in flight.
          deadlineMs: 540_000,
          window: 200,
        }),
      ],
    });
    const next = described.info.nextActionTimes;
    expect(next.length).toBeGreaterThan(1);
    for (const time of next) expect(time.getUTCMinutes() % 10).toBe(0);
    expect(scheduleDrift(def, described)).toEqual([]);
  });

  it("running it again changes nothing", async () => {
    const def = csvImport(config);
    expect(await reconcileSchedule(client, def)).toBe("created");
    expect(await reconcileSchedule(client, def)).toBe("unchanged");
    expect(await reconcileSchedule(client, def)).toBe("unchanged");
  });

  it("updates a changed cron and settings", async () => {
    expect(await reconcileSchedule(client, csvImport(config))).toBe("created");
    const changed = csvImport(
      withEnv({ CSV_IMPORT_INTERVAL: "7 * * * *", CSV_IMPORT_BATCH_SIZE: "3" }),
    );
    expect(await reconcileSchedule(client, changed)).toBe("updated");

    const described = await client.schedule.getHandle(changed.scheduleId).describe();
    for (const time of described.info.nextActionTimes) expect(time.getUTCMinutes()).toBe(7);
    expect(described.action.type === "startWorkflow" && described.action.args).toEqual([
      expect.objectContaining({ batchSize: 3 }),
    ]);
    expect(await reconcileSchedule(client, changed)).toBe("unchanged");
  });

  it("never unpauses a schedule an operator paused, and keeps the note", async () => {
    const def = csvImport(config);
    await reconcileSchedule(client, def);
    const handle = client.schedule.getHandle(def.scheduleId);
    await handle.pause("paused by ops: source maintenance");

    expect(await reconcileSchedule(client, def)).toBe("unchanged");
    const changed = csvImport(withEnv({ CSV_IMPORT_INTERVAL: "*/4 * * * *" }));
    expect(await reconcileSchedule(client, changed)).toBe("updated");

    const described = await handle.describe();
    expect(described.state.paused).toBe(true);
    expect(described.state.note).toBe("paused by ops: source maintenance");
    for (const time of described.info.nextActionTimes) expect(time.getUTCMinutes() % 4).toBe(0);
  });

  it("two replicas reconciling at once end with one schedule", async () => {
    const def = csvImport(config);
    const results = await Promise.all([
      reconcileSchedule(client, def),
      reconcileSchedule(client, def),
    ]);
    expect(results.filter((r) => r === "created")).toHaveLength(1);
    expect(results.filter((r) => r === "unchanged")).toHaveLength(1);
  });

  it("puts back a spec edited in the Temporal UI, which only changes the calendars", async () => {
    const def = csvImport(withEnv({ CSV_IMPORT_INTERVAL: "*/10 * * * *" }));
    await reconcileSchedule(client, def);
    const handle = client.schedule.getHandle(def.scheduleId);
    // What the UI's edit sends: a new spec, the action (and our memo) untouched.
    await handle.update((previous) => ({
      ...previous,
      spec: { cronExpressions: ["7 * * * *"], timezone: "UTC" },
    }));
    const edited = await handle.describe();
    expect(liveSpec(edited)).toEqual({ cron: "7 * * * *", timeZone: "UTC" });
    expect(scheduleDrift(def, edited)).toEqual(["spec"]);

    expect(await reconcileSchedule(client, def)).toBe("updated");
    const restored = await handle.describe();
    expect(liveSpec(restored)).toEqual({ cron: "*/10 * * * *", timeZone: "UTC" });
    expect(scheduleDrift(def, restored)).toEqual([]);
  });

  it("<TYPE>_AUTO_START=false creates the schedule paused with a note saying why", async () => {
    const def = csvImport(withEnv({ CSV_IMPORT_AUTO_START: "false" }));
    expect(await reconcileSchedule(client, def)).toBe("created");
    const described = await client.schedule.getHandle(def.scheduleId).describe();
    expect(described.state).toMatchObject({
      paused: true,
      note: "created paused: CSV_IMPORT_AUTO_START=false (resume it to start csv-import)",
    });
    // An operator's resume holds: reconcile never pauses an existing schedule again.
    await client.schedule.getHandle(def.scheduleId).unpause("go");
    expect(await reconcileSchedule(client, def)).toBe("unchanged");
    expect((await client.schedule.getHandle(def.scheduleId).describe()).state.paused).toBe(false);
  });

  it("<TYPE>_ENABLED=false removes that type's schedule and never creates it", async () => {
    await reconcileSchedule(client, csvImport(config));
    const disabled = withEnv({ CSV_IMPORT_ENABLED: "false" });
    const defs = schedulerDefinitions(disabled).filter((d) => d.workerType === "csv-import");
    expect(await reconcileSchedules(client, defs)).toEqual({
      [defs[0]?.scheduleId ?? ""]: "disabled",
    });
    await expect(client.schedule.getHandle(defs[0]?.scheduleId ?? "").describe()).rejects.toThrow();
    expect(await reconcileSchedules(client, defs)).toEqual({
      [defs[0]?.scheduleId ?? ""]: "disabled",
    });
  });

  it("finds orphaned schedules (our memo, not configured, task queue unpolled) and removes the unpaused ones", async () => {
    // The schedules of a region this deployment no longer runs (REGION changed).
    const oldRegion = `${config.region}old`;
    const old = schedulerDefinitions(testConfig(databaseUrl, { REGION: oldRegion }));
    const [oldCsv, oldImport] = old;
    if (!oldCsv || !oldImport) throw new Error("definitions missing");
    await reconcileSchedule(client, oldCsv);
    await reconcileSchedule(client, oldImport);
    await client.schedule.getHandle(oldImport.scheduleId).pause("kept by ops");
    // A schedule without our memo is somebody else's, whatever its id.
    const foreignId = `livedash-foreign-${config.region}`;
    await client.schedule.create({
      scheduleId: foreignId,
      spec: { cronExpressions: ["0 0 1 1 *"] },
      action: { type: "startWorkflow", workflowType: "other", taskQueue: "other-queue", args: [] },
    });
    try {
      const known = new Set(schedulerDefinitions(config).map((d) => d.scheduleId));
      const orphans = await waitFor("both orphans listed", async () => {
        const found = await findOrphanedSchedules(client, config.temporal.namespace, known);
        const ids = found.map((o) => o.scheduleId);
        return ids.includes(oldCsv.scheduleId) && ids.includes(oldImport.scheduleId)
          ? found
          : undefined;
      });
      expect(orphans.map((o) => o.scheduleId)).not.toContain(foreignId);
      expect(orphans.find((o) => o.scheduleId === oldCsv.scheduleId)).toMatchObject({
        schedulerId: "csv-import",
        taskQueue: oldCsv.taskQueue,
        paused: false,
        pollers: 0,
      });
      const removed = await removeOrphanedSchedules(client, config.temporal.namespace, known);
      expect(removed).toContain(oldCsv.scheduleId);
      expect(removed).not.toContain(oldImport.scheduleId);
      await expect(client.schedule.getHandle(oldCsv.scheduleId).describe()).rejects.toThrow();
      expect((await client.schedule.getHandle(oldImport.scheduleId).describe()).state.paused).toBe(
        true,
      );
    } finally {
      for (const id of [foreignId, ...old.map((d) => d.scheduleId)]) {
        await client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
      }
    }
  });

  it("a process start never runs a paused schedule: only never-run, unpaused ones are kick-started", async () => {
    const defs = schedulerDefinitions(config);
    const [csv, imports] = defs;
    if (!csv || !imports) throw new Error("definitions missing");
    await reconcileSchedules(client, defs);
    await client.schedule.getHandle(csv.scheduleId).pause("paused by ops");
    const kicked = await kickStartSchedules(client, defs);
    expect(kicked).toContain(imports.scheduleId);
    expect(kicked).not.toContain(csv.scheduleId);
    const paused = await client.schedule.getHandle(csv.scheduleId).describe();
    expect(paused.info.numActionsTaken).toBe(0);
    expect(paused.info.recentActions).toEqual([]);
    // A second start (npm run dev restarted) triggers nothing again.
    expect(await kickStartSchedules(client, defs)).toEqual([]);
  });

  it("workers reconcile on a timer too: an edit made while they run is put back", async () => {
    const database = await testDatabase();
    const timed = withEnv({ SCHEDULER_RECONCILE_INTERVAL_MS: "1000" });
    const workers = await startTestWorkers(timed, database.db, ["csv-import"]);
    try {
      const def = csvImport(timed);
      const handle = client.schedule.getHandle(def.scheduleId);
      await handle.update((previous) => ({
        ...previous,
        spec: { cronExpressions: ["7 * * * *"], timezone: "UTC" },
      }));
      await waitFor(
        "the periodic reconcile to put the spec back",
        async () => liveSpec(await handle.describe()).cron === def.cron,
        { timeoutMs: 15_000, intervalMs: 300 },
      );
    } finally {
      await workers.shutdown();
      await database.drop();
    }
  });
});
