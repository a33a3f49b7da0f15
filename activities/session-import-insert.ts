import type { SessionImportRow } from "../lib/csv-rows.ts";
import { type Database, pgPoolOf } from "../lib/db.ts";
import { inSqlSpan } from "../lib/spans.ts";

/**
 * Bulk insert of import rows as one statement with one array per column: a handful of
 * parameters whatever the batch size. Prisma's createMany compiles a parameter per value and,
 * measured in bench/, cost ~1 ms of CPU per row and kept memory after every batch.
 * The unique key (companyId, externalSessionId) turns a re-read row into a skipped duplicate.
 */
const COLUMNS: readonly [keyof SessionImportRow, string][] = [
  ["externalSessionId", "text"],
  ["startTimeRaw", "text"],
  ["endTimeRaw", "text"],
  ["ipAddress", "text"],
  ["countryCode", "text"],
  ["language", "text"],
  ["messagesSent", "int4"],
  ["sentimentRaw", "text"],
  ["escalatedRaw", "text"],
  ["forwardedHrRaw", "text"],
  ["fullTranscriptUrl", "text"],
  ["avgResponseTimeSeconds", "float8"],
  ["tokens", "int4"],
  ["tokensEur", "float8"],
  ["category", "text"],
  ["initialMessage", "text"],
  ["sourceLine", "int4"],
];

const INSERT_SQL = `INSERT INTO "SessionImport" ("id", "companyId", ${COLUMNS.map(([c]) => `"${c}"`).join(", ")}, "updatedAt")
  SELECT gen_random_uuid(), $1::uuid, u.*, now()
  FROM unnest(${COLUMNS.map(([, type], i) => `$${i + 2}::${type}[]`).join(", ")}) AS u
  ON CONFLICT ("companyId", "externalSessionId") DO NOTHING`;

/** Inserts the rows the table does not have yet; returns how many were inserted. */
export async function insertSessionImports(
  db: Database,
  companyId: string,
  rows: readonly SessionImportRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const columns = COLUMNS.map(([column]) => rows.map((row) => row[column]));
  // Straight through node-postgres: the arrays are large, and Prisma's argument handling cost
  // more worker CPU than the statement (the CSV import is bound by that one thread).
  const result = await inSqlSpan("INSERT", "SessionImport", INSERT_SQL, () =>
    pgPoolOf(db).query(INSERT_SQL, [companyId, ...columns]),
  );
  return result.rowCount ?? 0;
}
