import { parseArgs } from "node:util";
import { loadConfig, requireDatabaseUrl } from "../adapters/config.ts";
import { createDatabase } from "../adapters/db/client.ts";
import { createLogger } from "../adapters/logger.ts";
import { onShutdownSignal, runMain } from "../adapters/process-lifecycle.ts";
import { definitionsForWorker } from "../control-plane/scheduler-registry.ts";
import { isWorkerType, WORKER_TYPES, type WorkerType } from "../domain/scheduler-id.ts";
import { startWorkerHealthServer } from "./health-server.ts";
import { type RunningWorkers, startWorkers } from "./runtime.ts";

const usage = `Usage: tsx workers/main.ts [--scheduler=<type>[,<type>...] | --all | --list]
Scheduler types: ${WORKER_TYPES.join(", ")}`;

function selectedTypes(values: { scheduler?: string; all?: boolean }): WorkerType[] {
  if (!values.scheduler || values.all) return [...WORKER_TYPES];
  const requested = values.scheduler.split(",").map((s) => s.trim());
  for (const type of requested) {
    if (!isWorkerType(type)) throw new Error(`Unknown scheduler type "${type}".\n${usage}`);
  }
  return requested as WorkerType[];
}

runMain(async () => {
  const { values } = parseArgs({
    options: {
      scheduler: { type: "string" },
      all: { type: "boolean" },
      list: { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const config = loadConfig();
  if (values.list) {
    for (const type of WORKER_TYPES) {
      for (const def of definitionsForWorker(type, config)) {
        process.stdout.write(`${type}\t${def.taskQueue}\t${def.scheduleId}\t${def.cron}\n`);
      }
    }
    return;
  }
  const types = selectedTypes(values);
  const log = createLogger(config.logLevel, "worker");
  if (!config.scheduler.enabled) {
    await idleWhileDisabled(config.scheduler.healthPort, log);
    return;
  }
  const db = createDatabase(requireDatabaseUrl(config), { poolSize: config.databasePoolSize });
  const running = await startWorkers({ config, db, log, types });
  let stopping = false;
  const health =
    config.scheduler.healthPort > 0
      ? await startWorkerHealthServer({
          port: config.scheduler.healthPort,
          workers: running,
          stopping: () => stopping,
          log,
        })
      : undefined;
  onShutdownSignal(async (signal) => {
    // Not ready at once, so no new traffic is routed here while activities drain.
    stopping = true;
    log.info(
      { signal, graceMs: config.scheduler.shutdownGraceMs },
      "shutting down: polling stops, in-flight activities get the grace period",
    );
    await running.shutdown();
    await health?.close();
    await db.$disconnect();
    log.info("workers stopped");
    process.exit(0);
  });
  await running.done;
});

/**
 * SCHEDULER_ENABLED=false: the process says so, then stays up, idle and ready, until it is told
 * to stop. Exiting instead would make Kubernetes (restartPolicy Always), systemd (Restart=always)
 * or compose (restart: unless-stopped) start it again and again, a restart loop that looks like a
 * crash; an idle ready process is the honest state of "deployed but switched off".
 */
async function idleWhileDisabled(healthPort: number, log: ReturnType<typeof createLogger>) {
  const message =
    "SCHEDULER_ENABLED=false: this worker runs no scheduler and polls no task queue; it stays idle and ready until stopped (set SCHEDULER_ENABLED=true to run workers)";
  process.stdout.write(`${message}\n`);
  log.warn(message);
  const idle: RunningWorkers = {
    taskQueues: [],
    status: () => ({}),
    dependencies: () => ({}),
    done: new Promise<void>(() => undefined),
    shutdown: async () => undefined,
  };
  let stopping = false;
  const health =
    healthPort > 0
      ? await startWorkerHealthServer({
          port: healthPort,
          workers: idle,
          stopping: () => stopping,
          log,
        })
      : undefined;
  // Keeps the event loop alive without a health server too.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  onShutdownSignal(async () => {
    stopping = true;
    clearInterval(keepAlive);
    await health?.close();
    process.exit(0);
  });
  await idle.done;
}
