import { fileURLToPath } from "node:url";
import { bundleWorkflowCode } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../api/app.ts";
import type { HealthReport } from "../control-plane/scheduler-status.ts";
import { startWorkers } from "../workers/runtime.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerRun,
  waitFor,
} from "./support/harness.ts";

/**
 * A deploy that changes workflow code incompatibly wedges the runs in flight: every workflow
 * task fails with a non-determinism error and Temporal retries it forever, so the run neither
 * progresses nor fails. Health must say so, not only the Temporal UI.
 */
describe("a run stuck on a non-determinism error", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let incompatibleCode: string;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    const bundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL("./support/incompatible-workflows.ts", import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    incompatibleCode = bundle.code;
    // A CSV endpoint that holds the request until released: the run stays in flight.
    source = await startHttpServer(
      (_req, res) =>
        new Promise<void>((resolve) => {
          release = () => {
            res
              .writeHead(200, { "content-type": "text/csv" })
              .end("s-1,01.05.2025 08:00:00,01.05.2025 08:01:00\n");
            resolve();
          };
        }),
    );
    stack = await startTestStack({ env: { WORKER_SHUTDOWN_GRACE_MS: "500" } });
    await stack.db.company.create({ data: { name: "Stuck Co", csvUrl: `${source.url}/s.csv` } });
  }, 120_000);

  afterAll(async () => {
    release?.();
    await stack?.close();
    await source?.close();
  });

  it("shows ERROR with the reason in health", async () => {
    const deployed = await stack.startWorkers(["csv-import"]);
    const scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    const workflowId = await triggerRun(stack.client, scheduleId);
    await waitFor("the run's CSV fetch in flight", async () => release !== undefined);
    await deployed.shutdown();

    // The new deploy: a worker with incompatible workflow code picks the run up on its next
    // workflow task (a signal makes one) and fails it, again and again.
    const next = await startWorkers({
      config: stack.config,
      db: stack.db,
      log: silentLog,
      types: ["csv-import"],
      workflowBundle: { code: incompatibleCode },
      reconcile: false,
    });
    try {
      await stack.client.workflow.getHandle(workflowId).signal("wake");
      const app = createApp({
        config: stack.config,
        client: stack.client,
        db: stack.db,
        log: silentLog,
      });
      const body = await waitFor(
        "health to report the stuck run",
        async () => {
          const response = await app.request("/api/admin/schedulers/health");
          const report = (await response.json()) as HealthReport;
          return report.details["csv-import"]?.status === "ERROR"
            ? { response, report }
            : undefined;
        },
        { timeoutMs: 45_000, intervalMs: 500 },
      );
      expect(body.response.status).toBe(503);
      expect(body.report.details["csv-import"]?.reason).toMatch(
        new RegExp(
          `^run ${workflowId} is stuck: its workflow task failed \\d+ times \\(.*[Nn]ondeterminism`,
        ),
      );
    } finally {
      await next.shutdown();
      await stack.client.workflow
        .getHandle(workflowId)
        .terminate("test over")
        .catch(() => undefined);
    }
  }, 120_000);
});
