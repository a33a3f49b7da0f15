/**
 * Prisma Migrate without Prisma's binary schema engine: the WebAssembly schema engine
 * (@prisma/schema-engine-wasm) driven through @prisma/adapter-pg. Here, the commands (deploy,
 * status, dev); the folder on disk is read in migrations-folder.ts, the engine sessions run in
 * migrations-engine.ts on the driver adapters of migrations-engine-adapters.ts.
 *
 * Same on-disk and in-database layout as `prisma migrate`: prisma/migrations/<ts>_<name>/
 * migration.sql, migration_lock.toml, and the `_prisma_migrations` table (checksum = sha256 of
 * the file), so the stock `prisma migrate deploy` stays compatible wherever its binary exists.
 */
import type {
  HistoryDiagnostic,
  MigrationList,
  SchemaEngine,
  SchemaFilter,
} from "@prisma/schema-engine-wasm";
import { withSchemaEngine } from "./migrations-engine.ts";
import { MigrationError } from "./migrations-error.ts";
import {
  displayPath,
  LOCKFILE_CONTENT,
  type MigrationOptions,
  migrationSlug,
  migrationsDirOf,
  readMigrations,
  readSchema,
  type SchemaFile,
  utcTimestamp,
  writeMigration,
} from "./migrations-folder.ts";

export { MigrationError } from "./migrations-error.ts";
export type { MigrationOptions } from "./migrations-folder.ts";

export interface MigrationStatus {
  /** Migrations recorded as successfully applied, oldest first. */
  applied: string[];
  /** Migrations in the folder that the database has not applied yet. */
  pending: string[];
  /** Human-readable problems: edited or failed migrations, diverging histories, schema drift. */
  problems: string[];
}

const NO_FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] };

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Applies the pending migrations, like `prisma migrate deploy`. Refuses to run when an applied
 * migration was edited since (checksum mismatch) or a failed migration is recorded.
 */
export async function applyMigrations(
  databaseUrl: string,
  options: MigrationOptions = {},
): Promise<{ applied: string[] }> {
  const migrations = await readMigrations(migrationsDirOf(options));
  return withSchemaEngine(databaseUrl, async (engine) => ({
    applied: await applyPending(engine, migrations),
  }));
}

/** Where the database stands relative to the migrations folder (and the folder to the schema). */
export async function migrationStatus(
  databaseUrl: string,
  options: MigrationOptions = {},
): Promise<MigrationStatus> {
  const migrations = await readMigrations(migrationsDirOf(options));
  const schema = await readSchema(options);
  return withSchemaEngine(databaseUrl, async (engine, database) => {
    const diagnosis = await engine.diagnoseMigrationHistory({
      migrationsList: migrations,
      optInToShadowDatabase: false,
      filters: NO_FILTERS,
    });
    const problems = historyProblems(diagnosis);
    const drift = await schemaDrift(engine, migrations, schema);
    if (drift) problems.push(drift);
    return {
      applied: diagnosis.hasMigrationsTable ? await database.appliedMigrationNames() : [],
      pending: unappliedNames(diagnosis.history),
      problems,
    };
  });
}

/**
 * Like `prisma migrate dev --name <name>`: diffs the migrations folder (replayed on a throwaway
 * shadow database) against the Prisma schema, writes <UTC yyyyMMddHHmmss>_<name>/migration.sql
 * when they differ, then applies everything pending. Returns the new folder name, or null when
 * the schema had no changes.
 */
export async function createMigration(
  databaseUrl: string,
  name: string,
  options: MigrationOptions = {},
): Promise<string | null> {
  const slug = migrationSlug(name);
  const migrationsDir = migrationsDirOf(options);
  const schema = await readSchema(options);
  return withSchemaEngine(databaseUrl, async (engine) => {
    let migrations = await readMigrations(migrationsDir);
    // Check the database first, so a broken history does not leave a new, unapplied file behind.
    await assertHistoryIsClean(engine, migrations);
    const script = await diffMigrationsToSchema(engine, migrations, schema);
    let created: string | null = null;
    if (script !== null) {
      created = `${utcTimestamp(new Date())}_${slug}`;
      await writeMigration(migrationsDir, created, script);
      migrations = await readMigrations(migrationsDir);
    }
    await applyPending(engine, migrations);
    return created;
  });
}

// ---------------------------------------------------------------------------------------------
// Migration commands
// ---------------------------------------------------------------------------------------------

async function applyPending(engine: SchemaEngine, migrations: MigrationList): Promise<string[]> {
  await assertHistoryIsClean(engine, migrations);
  const { appliedMigrationNames } = await engine.applyMigrations({
    migrationsList: migrations,
    filters: NO_FILTERS,
  });
  return appliedMigrationNames;
}

/** The engine's applyMigrations only logs edited migrations; Prisma's deploy must refuse them. */
async function assertHistoryIsClean(engine: SchemaEngine, migrations: MigrationList) {
  const diagnosis = await engine.diagnoseMigrationHistory({
    migrationsList: migrations,
    optInToShadowDatabase: false,
    filters: NO_FILTERS,
  });
  const problems = [
    ...editedProblems(diagnosis.editedMigrationNames),
    ...failedProblems(diagnosis.failedMigrationNames),
  ];
  if (problems.length > 0) throw new MigrationError(problems.join("\n"));
}

type Diagnosis = Awaited<ReturnType<SchemaEngine["diagnoseMigrationHistory"]>>;

function historyProblems(diagnosis: Diagnosis): string[] {
  const problems = [
    ...editedProblems(diagnosis.editedMigrationNames),
    ...failedProblems(diagnosis.failedMigrationNames),
  ];
  const history = diagnosis.history;
  if (history?.diagnostic === "migrationsDirectoryIsBehind") {
    problems.push(
      `applied but missing from the folder: ${history.unpersistedMigrationNames.join(", ")}`,
    );
  } else if (history?.diagnostic === "historiesDiverge") {
    problems.push(
      `the database and the folder diverge after ${history.lastCommonMigrationName ?? "the start"}` +
        ` (only in the database: ${history.unpersistedMigrationNames.join(", ")})`,
    );
  }
  return problems;
}

function editedProblems(names: string[]): string[] {
  return names.map((name) => `migration ${name} was modified after it was applied (checksum)`);
}

function failedProblems(names: string[]): string[] {
  return names.map(
    (name) =>
      `migration ${name} failed in this database: repair the database by hand, then mark the ` +
      "migration rolled back (`prisma migrate resolve --rolled-back`, or set rolled_back_at in " +
      "_prisma_migrations) before deploying again",
  );
}

function unappliedNames(history: HistoryDiagnostic | null): string[] {
  if (history?.diagnostic === "databaseIsBehind" || history?.diagnostic === "historiesDiverge") {
    return history.unappliedMigrationNames;
  }
  return [];
}

/** The SQL taking the migrations folder to the schema, or null when there is nothing to do. */
async function diffMigrationsToSchema(
  engine: SchemaEngine,
  migrations: MigrationList,
  schema: SchemaFile,
): Promise<string | null> {
  const { exitCode, stdout } = await engine.diff({
    // The engine needs the connector from the lock file, even before the first migration.
    from: {
      tag: "migrations",
      ...migrations,
      lockfile: {
        ...migrations.lockfile,
        content: migrations.lockfile.content ?? LOCKFILE_CONTENT,
      },
    },
    to: { tag: "schemaDatamodel", files: [schema] },
    script: true,
    exitCode: true, // 2 when there is a difference
    filters: NO_FILTERS,
  });
  return exitCode === 2 && stdout ? stdout : null;
}

/** A problem line when the schema has changes that no migration contains (uses a shadow DB). */
async function schemaDrift(
  engine: SchemaEngine,
  migrations: MigrationList,
  schema: SchemaFile,
): Promise<string | null> {
  const where = displayPath(schema.path);
  try {
    if ((await diffMigrationsToSchema(engine, migrations, schema)) === null) return null;
    return `${where} has changes that no migration contains yet (run \`db-migrate dev <name>\`)`;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0]?.trim() : String(error);
    return `could not compare the migrations with ${where}: ${reason}`;
  }
}
