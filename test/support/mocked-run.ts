import type { Client } from "@temporalio/client";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import { Worker, type WorkerOptions } from "@temporalio/worker";
import { afterAll, beforeAll, inject } from "vitest";
import { UNTRACED_SINKS } from "../../adapters/tracing.ts";
import { testNamespace } from "./harness.ts";

/**
 * Runs one workflow of the production bundle on a real worker, with mocked activities, against
 * the test run's Temporal dev server; each run on a task queue of its own. Call at the top of a
 * describe block: it connects before the block's tests and tears down after them.
 */
export function mockedActivityRuns(prefix: string) {
  let env: TestWorkflowEnvironment | undefined;
  let queue = 0;

  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createFromExistingServer({
      address: inject("temporalAddress"),
      namespace: testNamespace(),
    });
  });
  afterAll(async () => {
    await env?.teardown();
  });

  const connected = () => {
    if (!env) throw new Error("the test workflow environment is not connected yet");
    return env;
  };

  return {
    client: (): Client => connected().client,
    async run<R>(
      workflowType: string,
      input: unknown,
      activities: object,
      workerOptions: Partial<WorkerOptions> = {},
    ): Promise<{ result: R; workflowId: string }> {
      const { nativeConnection, client } = connected();
      const taskQueue = `${prefix}-${process.pid}-${queue++}`;
      const worker = await Worker.create({
        connection: nativeConnection,
        namespace: testNamespace(),
        taskQueue,
        workflowBundle: { codePath: inject("workflowBundlePath") },
        sinks: UNTRACED_SINKS,
        activities,
        ...workerOptions,
      });
      const workflowId = `${taskQueue}-run`;
      const result = await worker.runUntil(
        client.workflow.execute(workflowType, { taskQueue, workflowId, args: [input] }),
      );
      return { result: result as R, workflowId };
    },
  };
}
