/**
 * Worker processes a bench starts as operators run them (`workers/main.ts` in child processes),
 * so their CPU and memory are their own, and the wait until they poll their task queues.
 */

import type { Client } from "@temporalio/client";
import { spawnWorkerProcess, type WorkerProcess } from "../test/support/processes.ts";

const STARTUP_TIMEOUT_MS = 180_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `count` worker processes (`<prefix>-1` ..) with these arguments, ready to poll. If one does not
 * get ready, all are stopped: a bench never leaves a process behind.
 */
export async function startWorkerProcesses(
  prefix: string,
  count: number,
  env: Record<string, string>,
  args: string[],
): Promise<WorkerProcess[]> {
  const workers = await Promise.all(
    Array.from({ length: count }, (_, i) => spawnWorkerProcess(`${prefix}-${i + 1}`, env, args)),
  );
  try {
    await Promise.all(workers.map((w) => w.waitReady(STARTUP_TIMEOUT_MS)));
  } catch (error) {
    await stopWorkerProcesses(workers);
    throw error;
  }
  return workers;
}

/** SIGTERM, then SIGKILL after 15 s: a bench never leaves a process behind. */
export async function stopWorkerProcesses(workers: WorkerProcess[]): Promise<void> {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill("SIGTERM");
    }
  }
  for (const worker of workers) {
    const timer = setTimeout(() => worker.child.kill("SIGKILL"), 15_000);
    await worker.exited;
    clearTimeout(timer);
  }
}

/**
 * Waits until `count` distinct workers poll a task queue of the default namespace: a worker is
 * ready only once its pollers are, and a schedule only once its workflow queue has one.
 */
export async function waitForPollers(
  client: Client,
  taskQueue: string,
  options: {
    kind: "workflow" | "activity";
    count: number;
    timeoutMs: number;
    /** Stops the wait early: the worker it waits for has exited. */
    exited?: () => boolean;
  },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (options.exited?.()) throw new Error(`a worker exited before polling ${taskQueue}`);
    const described = await client.workflowService
      .describeTaskQueue({
        namespace: "default",
        taskQueue: { name: taskQueue },
        taskQueueType: options.kind === "workflow" ? 1 : 2,
      })
      .catch(() => undefined);
    const identities = new Set((described?.pollers ?? []).map((p) => p.identity));
    if (identities.size >= options.count) return;
    if (Date.now() > deadline) {
      throw new Error(`${identities.size}/${options.count} workers polling ${taskQueue}`);
    }
    await sleep(250);
  }
}
