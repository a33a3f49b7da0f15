import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, migrationStatus } from "../adapters/db/migrations.ts";

const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));
const MIGRATIONS_DIR = path.join(PROJECT_ROOT, "prisma", "migrations");

/** DATABASE_URL's server (any database on it), else the local system PostgreSQL. */
const ADMIN_URL = withDatabase(
  process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
  "postgres",
);

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>, url = ADMIN_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const created: string[] = [];

/** A new, empty database on the server; dropped in afterAll. */
async function freshDatabase(): Promise<string> {
  const name = `mig_test_${randomBytes(6).toString("hex")}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  created.push(name);
  return withDatabase(ADMIN_URL, name);
}

async function migrationRows(url: string) {
  return admin(async (client) => {
    const { rows } = await client.query(
      "SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name",
    );
    return rows as Record<string, unknown>[];
  }, url);
}

async function migrationFolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "mig-test-"));
});

afterAll(async () => {
  for (const name of created) {
    await admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  }
  await rm(scratch, { recursive: true, force: true });
});

describe("applyMigrations", () => {
  it("applies the project's migrations to a fresh database, as Prisma records them", async () => {
    const url = await freshDatabase();
    const folders = await migrationFolders(MIGRATIONS_DIR);
    expect(folders.length).toBeGreaterThan(0);

    expect(await applyMigrations(url)).toEqual({ applied: folders });

    const rows = await migrationRows(url);
    expect(rows.map((row) => row.migration_name)).toEqual(folders);
    for (const row of rows) {
      const sql = await readFile(
        path.join(MIGRATIONS_DIR, String(row.migration_name), "migration.sql"),
        "utf8",
      );
      expect(row).toMatchObject({
        checksum: sha256(sql),
        logs: null,
        rolled_back_at: null,
        applied_steps_count: 1,
      });
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.started_at).toBeInstanceOf(Date);
      expect(row.finished_at).toBeInstanceOf(Date);
    }

    // The schema's tables exist.
    const tables = await admin(async (client) => {
      const { rows } = await client.query<{ tablename: string }>(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
      );
      return rows.map((row) => row.tablename);
    }, url);
    expect(tables).toEqual(expect.arrayContaining(["Company", "SessionImport", "SchedulerRun"]));
  });

  it("applies nothing the second time, and the status is clean", async () => {
    const url = await freshDatabase();
    const folders = await migrationFolders(MIGRATIONS_DIR);
    expect(await migrationStatus(url)).toEqual({ applied: [], pending: folders, problems: [] });

    await applyMigrations(url);
    expect(await applyMigrations(url)).toEqual({ applied: [] });
    expect(await migrationStatus(url)).toEqual({ applied: folders, pending: [], problems: [] });
  });

  it("refuses a migration modified after it was applied", async () => {
    const url = await freshDatabase();
    const migrationsDir = path.join(scratch, "edited");
    await cp(MIGRATIONS_DIR, migrationsDir, { recursive: true });
    await applyMigrations(url, { migrationsDir });

    const [first] = await migrationFolders(migrationsDir);
    await appendFile(path.join(migrationsDir, String(first), "migration.sql"), "\n-- edited\n");

    await expect(applyMigrations(url, { migrationsDir })).rejects.toThrow(
      `migration ${first} was modified after it was applied`,
    );
    const status = await migrationStatus(url, { migrationsDir });
    expect(status.problems).toEqual([expect.stringContaining(`${first} was modified`)]);
  });

  it("records a failed migration and refuses to deploy past it", async () => {
    const url = await freshDatabase();
    const migrationsDir = path.join(scratch, "failing");
    await cp(MIGRATIONS_DIR, migrationsDir, { recursive: true });
    const broken = "29991231000000_broken";
    await mkdir(path.join(migrationsDir, broken));
    await writeFile(
      path.join(migrationsDir, broken, "migration.sql"),
      'CREATE TABLE "Harmless" (id INT);\nALTER TABLE "DoesNotExist" ADD COLUMN x INT;\n',
    );

    await expect(applyMigrations(url, { migrationsDir })).rejects.toThrow(`migration ${broken}`);
    const rows = await migrationRows(url);
    expect(rows.find((row) => row.migration_name === broken)).toMatchObject({
      finished_at: null,
      rolled_back_at: null,
    });

    await expect(applyMigrations(url, { migrationsDir })).rejects.toThrow(
      `migration ${broken} failed`,
    );
    const status = await migrationStatus(url, { migrationsDir });
    expect(status.problems).toContainEqual(expect.stringContaining(`${broken} failed`));
  });

  it("runs scripts whole, so $$ function bodies survive", async () => {
    const url = await freshDatabase();
    const migrationsDir = path.join(scratch, "function");
    await mkdir(path.join(migrationsDir, "20000101000000_fn"), { recursive: true });
    await writeFile(
      path.join(migrationsDir, "20000101000000_fn", "migration.sql"),
      "CREATE FUNCTION two() RETURNS int AS $$\nBEGIN\n  RETURN 2;\nEND;\n$$ LANGUAGE plpgsql;\n",
    );

    expect(await applyMigrations(url, { migrationsDir })).toEqual({
      applied: ["20000101000000_fn"],
    });
    const two = await admin((client) => client.query("SELECT two() AS two"), url);
    expect(two.rows).toEqual([{ two: 2 }]);
  });

  it("lets a script that applied migrations exit without process.exit", async () => {
    const url = await freshDatabase();
    const script = [
      `import { applyMigrations } from ${JSON.stringify(path.join(PROJECT_ROOT, "adapters", "db", "migrations.ts"))};`,
      "await applyMigrations(process.env.MIGRATE_URL);",
    ].join("\n");
    const started = Date.now();
    await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "--eval", script],
      { cwd: PROJECT_ROOT, env: { ...process.env, MIGRATE_URL: url }, timeout: 30_000 },
    );
    // The engine's own timer would hold the process ~10 s.
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(await migrationRows(url)).not.toHaveLength(0);
  });
});
