import type { Config } from "../adapters/config.ts";
import { createDatabase } from "../adapters/db/client.ts";
import type { Logger } from "../adapters/logger.ts";
import { connectTemporalClient } from "../adapters/temporal.ts";
import { startApiServer } from "../api/server.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import { startWorkers } from "../workers/runtime.ts";

export interface RunningPlatform {
  apiPort: number;
  stop(): Promise<void>;
}

/**
 * The single-process deployment: the API plus a worker for every scheduler type (unless
 * SCHEDULER_ENABLED=false), against the configured Temporal and PostgreSQL.
 */
export async function startPlatform(
  config: Config,
  databaseUrl: string,
  log: Logger,
): Promise<RunningPlatform> {
  const db = createDatabase(databaseUrl, { poolSize: config.databasePoolSize });
  const temporal = await connectTemporalClient(config);
  const workers = config.scheduler.enabled
    ? await startWorkers({
        config,
        db,
        log: log.child({ component: "worker" }),
        types: WORKER_TYPES,
      })
    : undefined;
  if (!workers) log.warn("SCHEDULER_ENABLED=false: no workers in this process, API only");

  let stopping = false;
  const api = await startApiServer({
    config,
    client: temporal.client,
    db,
    log: log.child({ component: "api" }),
    // Not ready once shutdown begins, nor while a worker of this process is down.
    readiness: () => [
      { name: "shutdown", ok: !stopping, ...(stopping ? { detail: "shutting down" } : {}) },
      ...Object.entries(workers?.status() ?? {}).map(([type, state]) => ({
        name: `worker:${type}`,
        ok: state.status === "RUNNING",
        detail: state.lastError ? `${state.status}: ${state.lastError}` : state.status,
      })),
    ],
  });

  return {
    apiPort: api.port,
    stop: async () => {
      stopping = true;
      await workers?.shutdown();
      await api.close();
      await temporal.connection.close();
      await db.$disconnect();
    },
  };
}
