import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../adapters/config.ts";
import { connectTemporalClient } from "../adapters/temporal.ts";
import { reconcileSchedules } from "../control-plane/schedule-reconcile.ts";
import {
  maintenanceDefinitions,
  schedulerDefinitions,
} from "../control-plane/scheduler-registry.ts";
import type { HealthReport } from "../control-plane/scheduler-status.ts";
import { freePort } from "../scripts/services/ports.ts";
import { testDatabase, testEnv, waitFor } from "./support/harness.ts";
import { spawnApiProcess, spawnTsx, spawnWorkerProcess } from "./support/processes.ts";

/** How processes start when a part of the system is switched off or unreachable. */
describe("process startup", () => {
  let databaseUrl: string;

  beforeAll(async () => {
    const database = await testDatabase();
    await database.db.$disconnect();
    databaseUrl = database.url;
  });

  afterAll(() => undefined);

  it("SCHEDULER_ENABLED=false: a worker says so, stays up idle and ready, and exits 0 when stopped", async () => {
    const worker = await spawnWorkerProcess("disabled-worker", {
      ...testEnv(databaseUrl),
      SCHEDULER_ENABLED: "false",
    });
    try {
      await worker.waitReady(60_000);
      expect(worker.output()).toContain(
        "SCHEDULER_ENABLED=false: this worker runs no scheduler and polls no task queue; it stays idle and ready until stopped",
      );
      // Still there a while later: no exit for an orchestrator to restart in a loop.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(worker.child.exitCode).toBeNull();
      expect(await worker.readyz()).toBe(200);
    } finally {
      worker.child.kill("SIGTERM");
    }
    expect(await worker.exited).toBe(0);
  }, 90_000);

  it("the API starts without Temporal, reports it in health and readiness, within 2 s", async () => {
    const api = await spawnApiProcess({
      ...testEnv(databaseUrl),
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      ADMIN_API_INSECURE: "true",
      LOG_LEVEL: "error",
    });
    try {
      const started = Date.now();
      const health = await fetch(`${api.url}/api/admin/schedulers/health`);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(health.status).toBe(503);
      const body = (await health.json()) as HealthReport;
      expect(Object.values(body.details).every((d) => d.status === "ERROR")).toBe(true);
      expect(body.details["csv-import"]?.reason).toMatch(/^Temporal: /);
      const ready = await fetch(`${api.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: unknown[] }).checks).toContainEqual(
        expect.objectContaining({ name: "temporal", ok: false }),
      );
      await waitFor("the startup message", async () =>
        api.output().includes("Temporal is unreachable at startup"),
      );
    } finally {
      api.child.kill("SIGTERM");
      await api.exited;
    }
  }, 90_000);

  it("npm run dev restarted: a paused schedule is not run; only never-run ones get a first run", async () => {
    const env = {
      ...testEnv(databaseUrl),
      LOG_LEVEL: "info",
      PORT: String(await freePort()),
      DEMO_SOURCE_PORT: String(await freePort()),
      OPENAI_STAND_IN_PORT: String(await freePort()),
    };
    const config = loadConfig(env);
    const defs = schedulerDefinitions(config);
    const { client, connection } = await connectTemporalClient(config);
    const csv = defs.find((d) => d.id === "csv-import");
    const imports = defs.find((d) => d.id === "import-processing");
    if (!csv || !imports) throw new Error("definitions missing");
    // The state before the restart: every schedule exists, the operator paused csv-import.
    await reconcileSchedules(client, defs);
    await client.schedule.getHandle(csv.scheduleId).pause("paused by ops before the restart");
    const dev = spawnTsx("scripts/dev.ts", [], env);
    try {
      await waitFor(
        "npm run dev to be up",
        async () => {
          if (dev.child.exitCode !== null) throw new Error(`dev exited:\n${dev.output()}`);
          return dev.output().includes("LiveDash scheduler platform is running");
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      const paused = await client.schedule.getHandle(csv.scheduleId).describe();
      expect(paused.state.paused).toBe(true);
      expect(paused.info.numActionsTaken).toBe(0);
      expect(paused.info.recentActions).toEqual([]);
      expect(
        (await client.schedule.getHandle(imports.scheduleId).describe()).info.numActionsTaken,
      ).toBe(1);
    } finally {
      dev.child.kill("SIGTERM");
      await dev.exited;
      for (const def of [...defs, ...maintenanceDefinitions(config)]) {
        await client.schedule
          .getHandle(def.scheduleId)
          .delete()
          .catch(() => undefined);
      }
      await connection.close();
    }
  }, 150_000);
});
