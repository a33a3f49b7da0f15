/**
 * The services every bench runs against, started once per run: a headless Temporal dev server,
 * PostgreSQL with a fresh migrated database per bench, and the worker configuration pointing at
 * them.
 */

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { applyMigrations } from "../adapters/db/migrations.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  createDatabase,
  databaseUrlFor,
  dropDatabase,
  startRunPostgres,
} from "../scripts/services/postgres.ts";
import {
  ensureTemporalCli,
  PROJECT_ROOT,
  startTemporalDevServer,
} from "../scripts/services/temporal.ts";

/** Midnight on January 1st: runs happen only when the bench triggers them. */
export const NEVER = "0 0 1 1 *";

export interface Services {
  runId: string;
  temporalAddress: string;
  adminUrl: string;
  /** A fresh, migrated database of this run. */
  freshDatabase(label: string): Promise<string>;
  stop(): Promise<void>;
}

/** A headless Temporal dev server on a free port and PostgreSQL (DATABASE_URL's or embedded). */
export async function startServices(log: (line: string) => void): Promise<Services> {
  const runId = randomBytes(4).toString("hex");
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const cli = await ensureTemporalCli();
    const temporal = await startTemporalDevServer({
      cli,
      port: await freePort(),
      headless: true,
    });
    cleanups.push(temporal.stop);
    log(`temporal dev server at ${temporal.address}`);

    const dataDir = join(PROJECT_ROOT, ".data", `bench-${runId}`);
    const postgres = await startRunPostgres(dataDir);
    cleanups.push(postgres.stop);
    const adminUrl = postgres.adminUrl;
    log(postgres.embedded ? `embedded postgres in ${dataDir}` : "postgres: DATABASE_URL's server");
    const created: string[] = [];
    cleanups.push(async () => {
      for (const name of created) await dropDatabase(adminUrl, name).catch(() => undefined);
    });
    return {
      runId,
      temporalAddress: temporal.address,
      adminUrl,
      freshDatabase: async (label) => {
        const name = `livedash_bench_${runId}_${label.replace(/[^a-z0-9_]/g, "_")}`;
        await createDatabase(adminUrl, name);
        created.push(name);
        const url = databaseUrlFor(adminUrl, name);
        await applyMigrations(url);
        return url;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Configuration environment of a bench worker (in-process or child). */
export function benchEnv(
  databaseUrl: string,
  temporalAddress: string,
  region: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    REGION: region,
    LOG_LEVEL: "warn",
    WORKER_SHUTDOWN_GRACE_MS: "2000",
    CSV_IMPORT_INTERVAL: NEVER,
    IMPORT_PROCESSING_INTERVAL: NEVER,
    SESSION_PROCESSING_INTERVAL: NEVER,
    BATCH_PROCESSING_INTERVAL: NEVER,
    BATCH_PROCESSING_CHECK_INTERVAL: NEVER,
    CSV_IMPORT_TIMEOUT: "600000",
    CSV_IMPORT_MAX_BYTES: String(4 * 1024 * 1024 * 1024),
    // The generated sources listen on 127.0.0.1, which fetches refuse by default.
    FETCH_ALLOW_PRIVATE_NETWORKS: "127.0.0.0/8,::1",
    ...extra,
  };
}
