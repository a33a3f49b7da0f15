import { Client } from "@temporalio/client";
import { NativeConnection, Runtime, Worker, type WorkerOptions } from "@temporalio/worker";
import type OpenAI from "openai";
import { type ActivityWorker, createWorkerActivities } from "../activities/index.ts";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { Logger } from "../adapters/logger.ts";
import { createOpenAIClient } from "../adapters/openai.ts";
import { temporalConnectionOptions } from "../adapters/temporal.ts";
import { startTracing } from "../adapters/tracing.ts";
import { removeOrphanedSchedules } from "../control-plane/schedule-orphans.ts";
import { reconcileSchedules } from "../control-plane/schedule-reconcile.ts";
import {
  analysisTaskQueue,
  definitionsForWorker,
  maintenanceDefinitions,
  schedulerDefinitions,
  taskQueueFor,
} from "../control-plane/scheduler-registry.ts";
import type { WorkerType } from "../domain/scheduler-id.ts";
import { type DependencyState, startDependencyMonitor } from "./dependency-monitor.ts";
import { sdkLogger } from "./sdk-logger.ts";
import { loadWorkflowBundle } from "./workflow-bundle.ts";

let runtimeInstalled = false;
/** The SDK runtime is a process-wide singleton: install it once, before the first worker. */
function installRuntime(log: Logger, metricsPort: number | undefined): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: sdkLogger(log),
      // Each entry point handles its signals (adapters/process-lifecycle.ts) and shuts the workers down itself.
      shutdownSignals: [],
      telemetryOptions: {
        // The SDK core's own warnings (e.g. polls failing while Temporal is unreachable) as
        // JSON lines through our logger, not as coloured text on stderr.
        logging: { filter: { core: "WARN", other: "ERROR" }, forward: {} },
        // The SDK's own metrics (task latencies, slots, polls) on their own Prometheus endpoint.
        ...(metricsPort
          ? {
              metrics: {
                prometheus: {
                  bindAddress: `0.0.0.0:${metricsPort}`,
                  countersTotalSuffix: true,
                  unitSuffix: true,
                  useSecondsForDurations: true,
                },
              },
            }
          : {}),
      },
    });
  } catch {
    // Already installed by someone else in this process (e.g. a test harness): keep theirs.
  }
}

export interface StartWorkersOptions {
  config: Config;
  db: Database;
  log: Logger;
  types: readonly WorkerType[];
  /** Workflow code bundled by the caller (tests bundle once per run); else the prebuilt file. */
  workflowBundle?: WorkerOptions["workflowBundle"];
  /** OpenAI client for the analysis activities (default: from configuration). */
  openai?: OpenAI;
  /** Create or update this worker type's schedules before polling (default true). */
  reconcile?: boolean;
}

export type WorkerStatus = "STARTING" | "RUNNING" | "RESTARTING" | "STOPPED" | "FAILED";

export interface RunningWorkers {
  taskQueues: { type: WorkerType; taskQueue: string }[];
  /** Each worker type's current state in this process (RESTARTING while backing off). */
  status(): Record<string, { status: WorkerStatus; restarts: number; lastError?: string }>;
  /** Whether Temporal and PostgreSQL answered this process's last probe (every 5 s). */
  dependencies(): Record<string, DependencyState>;
  /** Resolves when every worker has stopped; rejects if one fails and auto-restart is off. */
  done: Promise<void>;
  /** Stops polling, lets in-flight activities finish within the grace period, then closes. */
  shutdown(): Promise<void>;
}

const MAX_RESTART_DELAY_MS = 60_000;

/** One Temporal worker: a task queue this process polls, with its slots and rate limit. */
interface WorkerSpec {
  /** The scheduler type, or `analysis` for the direct-mode model calls. */
  key: ActivityWorker;
  taskQueue: string;
  /** Polls workflow tasks too (the analysis queue carries activities only). */
  workflows: boolean;
  /** Activity slots of this worker: the back-pressure of the fleet. */
  slots: number;
  /** Activities per second across every worker of the queue, enforced by Temporal. */
  queueRatePerSecond?: number | undefined;
}

/**
 * The workers a scheduler type runs. Per-type slot settings keep their documented meaning as
 * "at once per replica"; session-processing also serves the rate-limited analysis queue.
 */
function workerSpecs(type: WorkerType, config: Config): WorkerSpec[] {
  const slots: Record<WorkerType, number> = {
    "csv-import": config.csvImport.maxConcurrent,
    "import-processing": config.importProcessing.maxConcurrent,
    "session-processing": config.scheduler.maxConcurrentActivities,
    "batch-processing": config.scheduler.maxConcurrentActivities,
  };
  const own = {
    key: type,
    taskQueue: taskQueueFor(type, config),
    workflows: true,
    slots: slots[type],
  };
  if (type !== "session-processing") return [own];
  return [
    own,
    {
      key: "analysis",
      taskQueue: analysisTaskQueue(config),
      workflows: false,
      slots: config.analysis.maxConcurrent,
      queueRatePerSecond: config.analysis.requestsPerSecond || undefined,
    },
  ];
}

/**
 * Runs one Temporal worker per scheduler type on that type's own task queue. Any number of
 * processes may run the same types: Temporal hands each task to exactly one of them. With
 * SCHEDULER_AUTO_RESTART a worker that fails is created again, with exponential backoff.
 */
export async function startWorkers(options: StartWorkersOptions): Promise<RunningWorkers> {
  const { config, db, log, types } = options;
  installRuntime(log, config.scheduler.metricsPort);
  const workflowBundle = options.workflowBundle ?? (await loadWorkflowBundle(log));
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const tracing = await startTracing(config, log);
  const activitiesOf = createWorkerActivities({
    db,
    log,
    config,
    openai: options.openai ?? createOpenAIClient(config),
  });

  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    ...(tracing.clientInterceptors ? { interceptors: tracing.clientInterceptors } : {}),
  });
  const reconcile = () => reconcileDeployment({ client, config, db, log, types });
  let reconcileTimer: NodeJS.Timeout | undefined;
  if (options.reconcile ?? true) {
    await reconcile();
    // Again on a timer: an edit made in the Temporal UI is put back, a type switched off is
    // removed and orphans are cleaned up without waiting for the next deploy.
    if (config.scheduler.reconcileIntervalMs > 0) {
      reconcileTimer = setInterval(() => {
        reconcile().catch((error: unknown) =>
          log.warn({ err: error }, "periodic schedule reconcile failed; retrying next interval"),
        );
      }, config.scheduler.reconcileIntervalMs);
      reconcileTimer.unref();
    }
  }

  const createWorker = (spec: WorkerSpec) =>
    Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: spec.taskQueue,
      identity: `${config.scheduler.instanceId}:${spec.key}`,
      // Only this queue's own activities: a task of another stage is never run here.
      activities: activitiesOf(spec.key),
      ...(spec.workflows ? { workflowBundle } : {}),
      // Activity spans, and the sink the workflow interceptors (in the bundle) export to.
      ...tracing.workerOptions,
      shutdownGraceTime: config.scheduler.shutdownGraceMs,
      maxConcurrentActivityTaskExecutions: spec.slots,
      ...(spec.queueRatePerSecond
        ? { maxTaskQueueActivitiesPerSecond: spec.queueRatePerSecond }
        : {}),
    });
  const specs = types.flatMap((type) => workerSpecs(type, config));

  let stopping = false;
  const current = new Map<string, Worker>();
  const states = new Map<string, { status: WorkerStatus; restarts: number; lastError?: string }>();
  const wakeUps = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(wake, ms);
      function wake() {
        clearTimeout(timer);
        wakeUps.delete(wake);
        resolve();
      }
      wakeUps.add(wake);
    });

  // First creation happens here, so a bad configuration fails startup instead of looping.
  const first = new Map(
    await Promise.all(specs.map(async (spec) => [spec.key, await createWorker(spec)] as const)),
  );

  const supervise = async (spec: WorkerSpec) => {
    const type = spec.key;
    let worker: Worker | undefined = first.get(type);
    let restarts = 0;
    for (;;) {
      try {
        worker ??= await createWorker(spec);
        current.set(type, worker);
        states.set(type, { status: "RUNNING", restarts });
        log.info({ workerType: type, taskQueue: spec.taskQueue, restarts }, "worker polling");
        await worker.run();
        if (stopping) break;
        throw new Error("worker stopped without being asked to");
      } catch (error) {
        if (stopping) break;
        const message = error instanceof Error ? error.message : String(error);
        if (!config.scheduler.autoRestart) {
          states.set(type, { status: "FAILED", restarts, lastError: message });
          log.error(
            { workerType: type, err: error },
            "worker failed (SCHEDULER_AUTO_RESTART=false)",
          );
          throw error;
        }
        restarts += 1;
        const delay = Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** Math.min(restarts - 1, 6));
        states.set(type, { status: "RESTARTING", restarts, lastError: message });
        log.error(
          { workerType: type, err: error, restarts, delayMs: delay },
          "worker failed; restarting",
        );
        worker = undefined;
        await pause(delay);
        if (stopping) break;
      }
    }
    states.set(type, { status: "STOPPED", restarts: states.get(type)?.restarts ?? restarts });
  };
  const done = Promise.all(specs.map(supervise)).then(() => undefined);
  const monitor = startDependencyMonitor({
    log,
    checks: {
      temporal: () =>
        connection.withDeadline(Date.now() + 3_000, () =>
          connection.workflowService.getSystemInfo({}),
        ),
      database: () => db.$queryRaw`SELECT 1`,
    },
  });

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      stopping = true;
      clearInterval(reconcileTimer);
      monitor.stop();
      for (const wake of wakeUps) wake();
      for (const worker of current.values()) {
        if (worker.getState() === "RUNNING") worker.shutdown();
      }
      await done.catch(() => undefined);
      // After the workers: the last workflow spans reach the exporter through their sink.
      await tracing.shutdown();
      await connection.close();
    })();
    return closing;
  };
  return {
    taskQueues: types.map((type) => ({ type, taskQueue: taskQueueFor(type, config) })),
    status: () => Object.fromEntries(states),
    dependencies: monitor.status,
    done,
    shutdown,
  };
}

/**
 * One reconcile pass of a worker process: its types' schedules match the configuration (stopped
 * ones stay absent), every schedule of a type switched off in this region is removed, and
 * orphaned schedules are removed (control-plane/schedule-orphans.ts has the rule).
 */
export async function reconcileDeployment(options: {
  client: Client;
  config: Config;
  db: Database;
  log: Logger;
  types: readonly WorkerType[];
}): Promise<void> {
  const { client, config, db, log, types } = options;
  const stopped = new Set(
    (
      await db.schedulerSetting.findMany({
        where: { enabled: false },
        select: { scheduleId: true },
      })
    ).map((s) => s.scheduleId),
  );
  const all = schedulerDefinitions(config);
  for (const type of types) {
    const results = await reconcileSchedules(
      client,
      definitionsForWorker(type, config),
      log,
      stopped,
    );
    log.info({ workerType: type, schedules: results }, "schedules reconciled");
  }
  const disabledElsewhere = all.filter((d) => !d.enabled && !types.includes(d.workerType));
  if (disabledElsewhere.length > 0) await reconcileSchedules(client, disabledElsewhere, log);
  const owned = new Set([...all, ...maintenanceDefinitions(config)].map((d) => d.scheduleId));
  await removeOrphanedSchedules(client, config.temporal.namespace, owned, log);
}
