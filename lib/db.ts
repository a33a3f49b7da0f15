import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.ts";

export type Database = PrismaClient;

/** A Prisma client over node-postgres; no engine binary involved. */
export function createDatabase(databaseUrl: string, options: { poolSize?: number } = {}): Database {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    max: options.poolSize ?? 10,
    // Fail fast instead of queueing forever when PostgreSQL is unreachable.
    connectionTimeoutMillis: 10_000,
  });
  return new PrismaClient({
    adapter,
    // Under load, activities queue for a pooled connection: wait for one (Prisma's default
    // gives up after 2 s, failing an activity whose model call was already paid for).
    transactionOptions: { maxWait: 10_000, timeout: 20_000 },
  });
}
