/**
 * The database variables: where PostgreSQL is and how many connections a process opens. One area
 * of the configuration schema (schema.ts joins them); requireDatabaseUrl (load-config.ts) is for
 * the processes that cannot run without it.
 */
import { z } from "zod";
import { int, optionalUrl } from "./env-values.ts";

export const databaseEnv = z.object({
  DATABASE_URL: optionalUrl(["postgres:", "postgresql:"]),
  DATABASE_POOL_SIZE: int(10, 1, 500),
});

/** The `databaseUrl` and `databasePoolSize` parts of Config. */
export function databaseSection(e: z.output<typeof databaseEnv>) {
  return {
    databaseUrl: e.DATABASE_URL,
    /** Connections per process; writes wait up to 10 s for one before failing. */
    databasePoolSize: e.DATABASE_POOL_SIZE,
  };
}
