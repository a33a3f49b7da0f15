import type { Client } from "@temporalio/client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../lib/config.ts";
import { schedulerDefinitions } from "../lib/schedulers.ts";
import { reconcileSchedule, scheduleDrift } from "../lib/schedules.ts";
import { testConfig, testDatabase, testTemporalClient } from "./support/harness.ts";

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
    for (const def of schedulerDefinitions(config)) {
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
      withEnv({ CSV_IMPORT_INTERVAL: "*/10 * * * *", CSV_IMPORT_BATCH_SIZE: "4" }),
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
});
