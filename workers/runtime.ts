import { fileURLToPath } from "node:url";
import { Client } from "@temporalio/client";
import { NativeConnection, Worker, type WorkerOptions } from "@temporalio/worker";
import type OpenAI from "openai";
import { createActivities } from "../activities/index.ts";
import type { Config } from "../lib/config.ts";
import type { Database } from "../lib/db.ts";
import type { Logger } from "../lib/logger.ts";
import { createOpenAIClient } from "../lib/openai.ts";
import { definitionsForWorker, taskQueueFor, type WorkerType } from "../lib/schedulers.ts";
import { reconcileSchedules } from "../lib/schedules.ts";
import { temporalAddress } from "../lib/temporal.ts";

export const WORKFLOWS_PATH = fileURLToPath(new URL("../workflows/index.ts", import.meta.url));

export interface StartWorkersOptions {
  config: Config;
  db: Database;
  log: Logger;
  types: readonly WorkerType[];
  /** Pre-built workflow code (tests bundle once); otherwise bundled from WORKFLOWS_PATH. */
  workflowBundle?: WorkerOptions["workflowBundle"];
  /** OpenAI client for the analysis activities (default: from configuration). */
  openai?: OpenAI;
  /** Create or update this worker type's schedules before polling (default true). */
  reconcile?: boolean;
}

export interface RunningWorkers {
  workers: { type: WorkerType; taskQueue: string; worker: Worker }[];
  /** Resolves when every worker has stopped; rejects if one fails. */
  done: Promise<void>;
  /** Stops polling, lets in-flight activities finish within the grace period, then closes. */
  shutdown(): Promise<void>;
}

/**
 * Runs one Temporal worker per scheduler type on that type's own task queue. Any number of
 * processes may run the same types: Temporal hands each task to exactly one of them.
 */
export async function startWorkers(options: StartWorkersOptions): Promise<RunningWorkers> {
  const { config, db, log, types } = options;
  const connection = await NativeConnection.connect({ address: temporalAddress(config) });
  const activities = createActivities({
    db,
    log,
    config,
    openai: options.openai ?? createOpenAIClient(config),
  });

  if (options.reconcile ?? true) {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    for (const type of types) {
      const results = await reconcileSchedules(client, definitionsForWorker(type, config), log);
      log.info({ workerType: type, schedules: results }, "schedules reconciled");
    }
  }

  const workers = await Promise.all(
    types.map(async (type) => {
      const taskQueue = taskQueueFor(type, config);
      const worker = await Worker.create({
        connection,
        namespace: config.temporal.namespace,
        taskQueue,
        identity: `${config.scheduler.instanceId}:${type}`,
        activities,
        ...(options.workflowBundle
          ? { workflowBundle: options.workflowBundle }
          : { workflowsPath: WORKFLOWS_PATH }),
        shutdownGraceTime: config.scheduler.shutdownGraceMs,
      });
      return { type, taskQueue, worker };
    }),
  );

  const done = Promise.all(workers.map(({ worker }) => worker.run())).then(() => undefined);
  for (const { type, taskQueue } of workers) {
    log.info({ workerType: type, taskQueue }, "worker polling");
  }

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      for (const { worker } of workers) {
        if (worker.getState() === "RUNNING") worker.shutdown();
      }
      await done.catch(() => undefined);
      await connection.close();
    })();
    return closing;
  };
  return { workers, done, shutdown };
}
