import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client.ts";
import { withUtcSessions } from "./utc-sessions.ts";

export type Database = PrismaClient;

const pools = new WeakMap<Database, pg.Pool>();

/** A Prisma client over node-postgres; no engine binary involved. */
export function createDatabase(databaseUrl: string, options: { poolSize?: number } = {}): Database {
  const pool = new pg.Pool({
    ...withUtcSessions(databaseUrl),
    max: options.poolSize ?? 10,
    // Fail fast instead of queueing forever when PostgreSQL is unreachable.
    connectionTimeoutMillis: 10_000,
  });
  const db = new PrismaClient({
    adapter: new PrismaPg(pool, { disposeExternalPool: true }),
    // Under load, activities queue for a pooled connection: wait for one (Prisma's default
    // gives up after 2 s, failing an activity whose model call was already paid for).
    transactionOptions: { maxWait: 10_000, timeout: 20_000 },
  });
  pools.set(db, pool);
  return db;
}

/**
 * The node-postgres pool under a client, for bulk statements with large array parameters:
 * Prisma's handling of the arguments costs more CPU than the statement itself (measured on
 * 100k import rows: 1.5 s through $executeRawUnsafe, 0.6 s through pg).
 */
export function pgPoolOf(db: Database): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error("not a client made by createDatabase");
  return pool;
}
