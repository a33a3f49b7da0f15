import { fileURLToPath } from "node:url";
import { bundleWorkflowCode } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../adapters/config.ts";
import { taskQueueFor } from "../control-plane/scheduler-registry.ts";
import { startWorkerHealthServer } from "../workers/health-server.ts";
import { startWorkers } from "../workers/runtime.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import { silentLog, startTestStack, type TestStack, waitFor } from "./support/harness.ts";

/**
 * SCHEDULER_AUTO_RESTART against a real worker failure: a workflow crashes the worker thread
 * that runs workflow code, which the Temporal SDK treats as fatal to the whole Worker (its run()
 * rejects). With auto-restart the supervisor creates the worker again after a backoff, readiness
 * says RESTARTING meanwhile, and the restarted worker runs the schedule; without it the worker
 * stays FAILED and the process learns of it.
 */
describe("worker auto-restart", () => {
  let workflowCode: string;
  const stacks: TestStack[] = [];

  beforeAll(async () => {
    const bundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL("./support/crashing-workflows.ts", import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    workflowCode = bundle.code;
  }, 120_000);

  afterAll(async () => {
    for (const stack of stacks) await stack.close();
  });

  async function setUp(autoRestart: boolean) {
    const stack = await startTestStack({
      env: { SCHEDULER_AUTO_RESTART: String(autoRestart) },
    });
    stacks.push(stack);
    const workers = await startWorkers({
      config: stack.config,
      db: stack.db,
      log: silentLog,
      types: ["csv-import"],
      workflowBundle: { code: workflowCode },
    });
    return { stack, workers };
  }

  async function crashWorkerThread(stack: TestStack, config: Config) {
    return stack.client.workflow.start("crashWorkflowThread", {
      taskQueue: taskQueueFor("csv-import", config),
      workflowId: `crash-${config.region ?? "default"}-${Date.now()}`,
    });
  }

  it("restarts a failed worker with backoff; readiness shows RESTARTING, then it runs again", async () => {
    const { stack, workers } = await setUp(true);
    const health = await startWorkerHealthServer({
      port: 0,
      workers,
      stopping: () => false,
      log: silentLog,
    });
    const readyz = async () => {
      const response = await fetch(`http://127.0.0.1:${health.port}/readyz`);
      return {
        status: response.status,
        body: (await response.json()) as { workers: Record<string, { status: string }> },
      };
    };
    try {
      expect((await readyz()).status).toBe(200);

      const crash = await crashWorkerThread(stack, stack.config);
      const failed = await waitFor("the worker to fail", async () => {
        const state = workers.status()["csv-import"];
        return state?.status === "RESTARTING" ? state : undefined;
      });
      expect(failed.restarts).toBeGreaterThanOrEqual(1);
      expect(failed.lastError).toMatch(/Workflow Worker Thread exited/);
      const during = await readyz();
      expect(during.status).toBe(503);
      expect(during.body.workers["csv-import"]?.status).toMatch(/RESTARTING|RUNNING/);

      // The crashing workflow would take the next worker down too: end it, as an operator would.
      await crash.terminate("fault injection over");
      const recovered = await waitFor(
        "the worker to run again",
        async () => {
          const state = workers.status()["csv-import"];
          return state?.status === "RUNNING" && state.restarts >= 1 ? state : undefined;
        },
        { timeoutMs: 90_000 },
      );
      expect(recovered.restarts).toBeGreaterThanOrEqual(1);
      expect((await readyz()).status).toBe(200);

      // The restarted worker does real work: the csv-import schedule's run completes.
      const { result } = await stack.run<RunSummary<CsvImportRunCounts>>("csv-import");
      expect(result.outcome).toBe("SUCCEEDED");
    } finally {
      await health.close();
      await workers.shutdown();
    }
  }, 180_000);

  it("without auto-restart the worker stays FAILED and its failure reaches the process", async () => {
    const { stack, workers } = await setUp(false);
    const done = workers.done.then(
      () => "resolved",
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    const crash = await crashWorkerThread(stack, stack.config);
    try {
      expect(await done).toMatch(/Workflow Worker Thread exited/);
      expect(workers.status()["csv-import"]).toMatchObject({ status: "FAILED", restarts: 0 });
    } finally {
      await crash.terminate("fault injection over").catch(() => undefined);
      await workers.shutdown();
    }
  }, 120_000);
});
