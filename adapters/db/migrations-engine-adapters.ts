/**
 * The driver adapters the schema engine runs on: @prisma/adapter-pg over pools we own, for the
 * main database and for shadow databases, with workarounds for @prisma/adapter-pg 7.10.1 bugs
 * (numbered below).
 */
import { randomUUID } from "node:crypto";
import { PrismaPg } from "@prisma/adapter-pg";
import {
  ColumnTypeEnum,
  DriverAdapterError,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
  type SqlQuery,
  type SqlResultSet,
  type Transaction,
} from "@prisma/driver-adapter-utils";
import pg from "pg";
import { withUtcSessions } from "./utc-sessions.ts";

/** The `_prisma_migrations` table, as status reads it. */
export interface MigrationsTable {
  appliedMigrationNames(): Promise<string[]>;
}

const CHAR_OID = 18;
const NAME_OID = 19;
const TEXT_OID = 25;

/** Result rows whose query had `"char"` columns -> those column indexes (see bug 1). */
const charColumnsOfRows = new WeakMap<unknown[], number[]>();

/**
 * Bug 1 (prisma/orm#27403): adapter-pg throws "Unsupported column type" on `"char"` (OID 18)
 * columns, which the schema describer reads from pg_catalog (older releases also on `name`,
 * OID 19). We show such columns to the adapter as text, remembering which ones were `"char"`,
 * and re-type those as Character in queryRaw below: as Text, the describer panics on PG 18.
 */
function acceptCharColumns(queryable: pg.Pool | pg.PoolClient): void {
  type ArrayQuery = (config: pg.QueryArrayConfig) => Promise<pg.QueryArrayResult>;
  const query = queryable.query.bind(queryable) as unknown as ArrayQuery;
  const patched = async (...args: unknown[]) => {
    // adapter-pg only ever passes one config object; anything else is pg's own business.
    if (args.length !== 1 || typeof args[0] !== "object") {
      return (query as (...all: unknown[]) => unknown)(...args);
    }
    const result = await query(args[0] as pg.QueryArrayConfig);
    const charColumns: number[] = [];
    result.fields.forEach((field, index) => {
      if (field.dataTypeID === CHAR_OID) charColumns.push(index);
      if (field.dataTypeID === CHAR_OID || field.dataTypeID === NAME_OID)
        field.dataTypeID = TEXT_OID;
    });
    if (charColumns.length > 0) charColumnsOfRows.set(result.rows, charColumns);
    return result;
  };
  Object.assign(queryable, { query: patched });
}

function withCharColumnTypes(result: SqlResultSet): SqlResultSet {
  for (const index of charColumnsOfRows.get(result.rows) ?? []) {
    result.columnTypes[index] = ColumnTypeEnum.Character;
  }
  return result;
}

/**
 * Bug 4: adapter-pg's executeScript splits the script on every `;`, which breaks `$$` function
 * bodies and string literals. Send it whole instead, as one simple-protocol query, which is what
 * the native engine does (so a multi-statement migration runs in one implicit transaction).
 */
async function executeWholeScript(pool: pg.Pool, script: string): Promise<void> {
  try {
    await pool.query(script);
  } catch (error) {
    throw asDriverAdapterError(error);
  }
}

/** PostgreSQL errors in the shape the engine reports as "Database error code: ...". */
function asDriverAdapterError(error: unknown): unknown {
  if (!(error instanceof pg.DatabaseError)) return error;
  return new DriverAdapterError({
    kind: "postgres",
    code: error.code ?? "N/A",
    severity: error.severity ?? "ERROR",
    message: error.message,
    detail: error.detail,
    column: error.column,
    hint: error.hint,
    originalCode: error.code,
    originalMessage: error.message,
  });
}

/** adapter-pg's adapter with the workarounds above, over a pool we own. */
async function engineAdapter(pool: pg.Pool, onDispose: () => Promise<void>) {
  const adapter = await new PrismaPg(pool).connect();
  const wrapped: SqlDriverAdapter = {
    provider: adapter.provider,
    adapterName: adapter.adapterName,
    queryRaw: async (query: SqlQuery) => withCharColumnTypes(await adapter.queryRaw(query)),
    executeRaw: (query: SqlQuery) => adapter.executeRaw(query),
    executeScript: (script: string) => executeWholeScript(pool, script),
    startTransaction: async (isolationLevel) =>
      withCharColumnTypesInTransaction(await adapter.startTransaction(isolationLevel)),
    getConnectionInfo: () => adapter.getConnectionInfo(),
    dispose: onDispose,
  };
  return wrapped;
}

function withCharColumnTypesInTransaction(transaction: Transaction): Transaction {
  const queryRaw = transaction.queryRaw.bind(transaction);
  return Object.assign(transaction, {
    queryRaw: async (query: SqlQuery) => withCharColumnTypes(await queryRaw(query)),
  });
}

/**
 * Hands the engine adapters for the main database and for shadow databases, and owns every
 * pool and shadow database it creates until close().
 */
export class EngineAdapterFactory
  implements SqlMigrationAwareDriverAdapterFactory, MigrationsTable
{
  readonly provider = "postgres";
  readonly adapterName = "@prisma/adapter-pg";
  readonly #databaseUrl: string;
  readonly #mainPool: pg.Pool;
  readonly #shadows: { name: string; pool: pg.Pool }[] = [];

  constructor(databaseUrl: string) {
    this.#databaseUrl = databaseUrl;
    this.#mainPool = this.#newPool(databaseUrl);
  }

  /** The engine never disposes the main adapter: its pool is closed in close(). */
  connect(): Promise<SqlDriverAdapter> {
    return engineAdapter(this.#mainPool, async () => undefined);
  }

  /**
   * Bug 2: adapter-pg builds the shadow pool as { connectionString, database }, where the
   * connection string wins, so the "shadow" is the main database. We create the shadow
   * database ourselves (unique name, same server) and point a URL at it.
   * Bug 3: adapter-pg drops the shadow database before closing its pool, which fails while
   * connected. Here dispose only closes the pool; close() drops the database afterwards, also
   * when the engine failed half-way.
   */
  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = `prisma_migrate_shadow_db_${randomUUID()}`;
    await this.#mainPool.query(`CREATE DATABASE "${name}"`);
    const pool = this.#newPool(databaseUrlFor(this.#databaseUrl, name));
    this.#shadows.push({ name, pool });
    return engineAdapter(pool, () => endPool(pool));
  }

  async appliedMigrationNames(): Promise<string[]> {
    const { rows } = await this.#mainPool.query<{ migration_name: string }>(
      `SELECT migration_name FROM _prisma_migrations
        WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY started_at`,
    );
    return rows.map((row) => row.migration_name);
  }

  /** Closes every pool and drops every shadow database; safe to call after a failure. */
  async close(): Promise<void> {
    try {
      for (const shadow of this.#shadows) {
        await endPool(shadow.pool);
        // FORCE (PG 13+) in case the engine left a session behind.
        await this.#mainPool.query(`DROP DATABASE IF EXISTS "${shadow.name}" WITH (FORCE)`);
      }
    } finally {
      await endPool(this.#mainPool);
    }
  }

  #newPool(connectionString: string): pg.Pool {
    const pool = new pg.Pool({
      ...withUtcSessions(connectionString),
      max: 4,
      connectionTimeoutMillis: 10_000,
    });
    acceptCharColumns(pool);
    pool.on("connect", acceptCharColumns); // the connections of transactions
    // An idle client's error (e.g. the server restarting) must not crash the host process; the
    // next query fails and reports it.
    pool.on("error", () => undefined);
    return pool;
  }
}

async function endPool(pool: pg.Pool): Promise<void> {
  if (!pool.ended) await pool.end();
}

/** The same server's URL with another database name. */
function databaseUrlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}
