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
  return new PrismaClient({ adapter });
}
