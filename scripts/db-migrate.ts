/**
 * Prisma-compatible migrations without Prisma's engine binary (see adapters/db/migrations.ts).
 *
 *   tsx scripts/db-migrate.ts deploy        apply pending migrations
 *   tsx scripts/db-migrate.ts dev <name>    create a migration from schema changes, then apply
 *   tsx scripts/db-migrate.ts status        exit 1 when anything is pending or wrong
 *
 * DATABASE_URL names the database.
 */
import { applyMigrations, createMigration, migrationStatus } from "../adapters/db/migrations.ts";

const USAGE = "usage: tsx scripts/db-migrate.ts deploy | dev <name> | status";

async function main(args: string[]): Promise<number> {
  const [command, name] = args;
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error("DATABASE_URL is not set: point it at the PostgreSQL database to migrate.");
    return 2;
  }
  switch (command) {
    case "deploy":
      return deploy(databaseUrl);
    case "dev":
      if (!name) break;
      return dev(databaseUrl, name);
    case "status":
      return status(databaseUrl);
  }
  console.error(USAGE);
  return 2;
}

async function deploy(databaseUrl: string): Promise<number> {
  const { applied } = await applyMigrations(databaseUrl);
  if (applied.length === 0) console.log("No pending migrations to apply.");
  else console.log(`Applied ${applied.length} migration(s):\n${list(applied)}`);
  return 0;
}

async function dev(databaseUrl: string, name: string): Promise<number> {
  const created = await createMigration(databaseUrl, name);
  console.log(
    created
      ? `Created and applied prisma/migrations/${created}/migration.sql`
      : "No schema changes: no migration created. The database is up to date.",
  );
  return 0;
}

async function status(databaseUrl: string): Promise<number> {
  const { applied, pending, problems } = await migrationStatus(databaseUrl);
  console.log(`${applied.length} migration(s) applied.`);
  if (pending.length > 0) console.log(`Pending:\n${list(pending)}`);
  if (problems.length > 0) console.log(`Problems:\n${list(problems)}`);
  const ok = pending.length === 0 && problems.length === 0;
  if (ok) console.log("Database schema is up to date.");
  return ok ? 0 : 1;
}

function list(items: string[]): string {
  return items.map((item) => `  - ${item}`).join("\n");
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? `${error.name}: ${error.message}` : error);
    process.exit(1);
  },
);
