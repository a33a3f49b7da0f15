import { once } from "node:events";
import { finished } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { inSqlSpan } from "../adapters/spans.ts";
import type { SessionImportRow } from "../domain/csv-rows.ts";

/**
 * Bulk insert of import rows: `COPY` into a staging table, then one
 * `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into SessionImport. COPY is PostgreSQL's
 * cheapest way in (no per-value parameters for the worker to build, measured in bench/), and the
 * INSERT keeps what COPY cannot: the unique key (companyId, externalSessionId) turns a re-read
 * row, or a repeat inside the file, into a skipped and counted duplicate.
 *
 * The staging table is a temporary table created inside the chunk's own transaction with
 * ON COMMIT DROP: it lives in the connection's private schema (no other attempt or worker can
 * see or collide with it) and disappears at commit, at rollback, and when the connection dies
 * with a killed worker, so no path leaves one behind.
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

export const STAGING_TABLE = "session_import_staging";
const COLUMN_LIST = COLUMNS.map(([c]) => `"${c}"`).join(", ");

const BEGIN_SQL = `BEGIN; CREATE TEMPORARY TABLE ${STAGING_TABLE} (${COLUMNS.map(([c, type]) => `"${c}" ${type}`).join(", ")}) ON COMMIT DROP`;
const COPY_SQL = `COPY ${STAGING_TABLE} (${COLUMN_LIST}) FROM STDIN`;
const INSERT_SQL = `INSERT INTO "SessionImport" ("id", "companyId", ${COLUMN_LIST}, "updatedAt")
  SELECT gen_random_uuid(), $1::uuid, ${COLUMN_LIST}, now() FROM ${STAGING_TABLE}
  ON CONFLICT ("companyId", "externalSessionId") DO NOTHING`;

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const TAB = 9;
const NEWLINE = 10;

/**
 * Writes one chunk (COPY text) in one transaction; returns how many rows were new.
 * The connection is held only for the chunk's database work, never while a source is read.
 */
export async function insertSessionImportChunk(
  pool: pg.Pool,
  companyId: string,
  copyText: Buffer | string,
  rows: number,
): Promise<number> {
  if (rows === 0) return 0;
  // One span for the chunk: its COPY into the staging table and the INSERT that matters.
  return inSqlSpan("INSERT", "SessionImport", INSERT_SQL, () =>
    writeChunk(pool, companyId, copyText),
  );
}

async function writeChunk(pool: pg.Pool, companyId: string, copyText: Buffer | string) {
  const client = await pool.connect();
  try {
    await client.query(BEGIN_SQL);
    const copy = client.query(copyFrom(COPY_SQL));
    if (!copy.write(copyText)) await once(copy, "drain");
    copy.end();
    await finished(copy);
    const result = await client.query(INSERT_SQL, [companyId]);
    await client.query("COMMIT");
    client.release();
    return result.rowCount ?? 0;
  } catch (error) {
    // A broken COPY or transaction is not worth rescuing: closing the connection rolls it back
    // (and drops the staging table with it).
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/**
 * COPY text of one chunk, in a byte buffer that is reused from chunk to chunk. Each value is
 * written straight into the bytes (COPY's text format: NULL as \N; backslash, tab and line
 * breaks escaped; the parser has already refused NUL bytes), with no line string in between:
 * building one cost ~900 bytes of garbage per row.
 */
class ChunkBuffer {
  bytes = Buffer.allocUnsafe(1024 * 1024);
  length = 0;
  rows = 0;

  #reserve(chars: number): void {
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    const room = this.length + chars * 3;
    if (room > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(room, this.bytes.length * 2));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
  }

  #value(value: string | number | null): void {
    if (value === null) {
      this.#reserve(2);
      this.length += this.bytes.write("\\N", this.length, "latin1");
      return;
    }
    const text =
      typeof value === "number"
        ? String(value)
        : SPECIAL.test(value)
          ? value.replace(SPECIALS, (ch) => ESCAPED[ch] ?? ch)
          : value;
    this.#reserve(text.length);
    this.length += this.bytes.write(text, this.length);
  }

  appendRow(row: SessionImportRow): void {
    for (let i = 0; i < COLUMNS.length; i++) {
      const column = COLUMNS[i];
      if (!column) continue;
      if (i > 0) {
        this.#reserve(1);
        this.bytes[this.length++] = TAB;
      }
      this.#value(row[column[0]]);
    }
    this.#reserve(1);
    this.bytes[this.length++] = NEWLINE;
    this.rows += 1;
  }
}

/**
 * Import rows of one company in chunks: the chunk being filled is COPY text in memory, and at
 * most one chunk is being written while the next one fills, so the worker's thread (parsing)
 * and PostgreSQL (COPY, INSERT) work side by side. Chunks commit in order, and a chunk is not
 * started after an earlier one failed, so "committed up to here" never skips unwritten rows.
 *
 * Each row goes to bytes at once, into two buffers used in turn: nothing of a row stays on the
 * JavaScript heap, so rows die young instead of being promoted while their chunk fills, which
 * with Node's default heap limit left hundreds of MB of garbage in the old generation.
 */
export class SessionImportWriter {
  #filling = new ChunkBuffer();
  #spare = new ChunkBuffer();
  #writing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly companyId: string,
  ) {}

  /** Rows in the chunk being filled. */
  get rows(): number {
    return this.#filling.rows;
  }

  /** Bytes of COPY text in the chunk being filled. */
  get bytes(): number {
    return this.#filling.length;
  }

  add(row: SessionImportRow): void {
    this.#filling.appendRow(row);
  }

  /**
   * Waits for the previous chunk (throwing its failure), then starts writing the current one;
   * `committed(inserted, rows)` runs once it has committed.
   */
  async flush(committed: (inserted: number, rows: number) => void): Promise<void> {
    await this.#writing;
    const chunk = this.#filling;
    // The spare buffer's chunk has committed (awaited above): it is free to fill again.
    this.#filling = this.#spare;
    this.#filling.length = 0;
    this.#filling.rows = 0;
    this.#spare = chunk;
    const rows = chunk.rows;
    const writing = insertSessionImportChunk(
      this.pool,
      this.companyId,
      chunk.bytes.subarray(0, chunk.length),
      rows,
    ).then((inserted) => committed(inserted, rows));
    // Observed by the next flush or by settled(); never an unhandled rejection meanwhile.
    writing.catch(() => undefined);
    this.#writing = writing;
  }

  /** Waits for the chunk being written; throws its failure. */
  async settled(): Promise<void> {
    await this.#writing;
  }
}
