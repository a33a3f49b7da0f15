import { once } from "node:events";
import { finished } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { inSqlSpan } from "../adapters/spans.ts";
import { conflictReason, type SessionImportRow } from "../domain/csv-rows.ts";

/**
 * Bulk insert of import rows: `COPY` into a staging table, then one
 * `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into SessionImport. COPY is PostgreSQL's
 * cheapest way in (no per-value parameters for the worker to build, measured in bench/), and the
 * INSERT keeps what COPY cannot: the unique key (companyId, externalSessionId) turns a re-read
 * row, or a repeat inside the file, into a skipped and counted duplicate.
 *
 * A repeated session id is told apart here, not in a set of the file's ids held in memory (which
 * grew to ~44 MB at 1,000,000 ids): each stored row keeps its line and a digest of its values
 * (`sourceDigest`). A row whose session is stored from an earlier line with another digest is a
 * conflict, rejected with that line; otherwise a repeat is a duplicate. The first row is kept
 * either way. Companies' exports grow by appending, so a re-read file still finds its conflict on
 * the line it was first stored from, and a row corrected in place (same line) is a duplicate.
 *
 * The staging table is a temporary table created inside the chunk's own transaction with
 * ON COMMIT DROP: it lives in the connection's private schema (no other attempt or worker can
 * see or collide with it) and disappears at commit, at rollback, and when the connection dies
 * with a killed worker, so no path leaves one behind.
 */
const COLUMNS: readonly [keyof SessionImportRow | "sourceDigest", string][] = [
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
  // Written by the chunk buffer after the values it digests; not a field of SessionImportRow.
  ["sourceDigest", "float8"],
];
/** The columns that come from the row itself (all but the digest, written after them). */
const ROW_COLUMNS = COLUMNS.slice(0, -1) as readonly [keyof SessionImportRow, string][];
/** The values the digest covers: everything but sourceLine (a repeat sits on another line). */
const DIGESTED_COLUMNS = ROW_COLUMNS.length - 1;

export const STAGING_TABLE = "session_import_staging";
const COLUMN_LIST = COLUMNS.map(([c]) => `"${c}"`).join(", ");

const BEGIN_SQL = `BEGIN; CREATE TEMPORARY TABLE ${STAGING_TABLE} (${COLUMNS.map(([c, type]) => `"${c}" ${type}`).join(", ")}) ON COMMIT DROP`;
const COPY_SQL = `COPY ${STAGING_TABLE} (${COLUMN_LIST}) FROM STDIN`;
// In line order, so of two rows with one id in a chunk the first is the one stored.
const INSERT_SQL = `INSERT INTO "SessionImport" ("id", "companyId", ${COLUMN_LIST}, "updatedAt")
  SELECT gen_random_uuid(), $1::uuid, ${COLUMN_LIST}, now() FROM ${STAGING_TABLE}
  ORDER BY "sourceLine"
  ON CONFLICT ("companyId", "externalSessionId") DO NOTHING`;
// Rows of this chunk whose session is stored from an earlier line with other values.
const CONFLICTS_SQL = `SELECT s."externalSessionId" AS id, s."sourceLine" AS line, i."sourceLine" AS "firstLine"
  FROM ${STAGING_TABLE} s
  JOIN "SessionImport" i ON i."companyId" = $1::uuid AND i."externalSessionId" = s."externalSessionId"
  WHERE i."sourceDigest" <> s."sourceDigest" AND i."sourceLine" < s."sourceLine"
  ORDER BY s."sourceLine"`;

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const TAB = 9;
const NEWLINE = 10;

/** A row refused because its session id came earlier in the file with other values. */
export interface ChunkConflict {
  line: number;
  reason: string;
}

/** What one committed chunk did: rows new to the table, and the conflicts among the rest. */
export interface ChunkOutcome {
  inserted: number;
  conflicts: ChunkConflict[];
}

/**
 * Writes one chunk (COPY text) in one transaction. The connection is held only for the chunk's
 * database work, never while a source is read.
 */
export async function insertSessionImportChunk(
  pool: pg.Pool,
  companyId: string,
  copyText: Buffer | string,
  rows: number,
): Promise<ChunkOutcome> {
  if (rows === 0) return { inserted: 0, conflicts: [] };
  // One span for the chunk: its COPY into the staging table and the INSERT that matters.
  return inSqlSpan("INSERT", "SessionImport", INSERT_SQL, () =>
    writeChunk(pool, companyId, copyText, rows),
  );
}

async function writeChunk(
  pool: pg.Pool,
  companyId: string,
  copyText: Buffer | string,
  rows: number,
): Promise<ChunkOutcome> {
  const client = await pool.connect();
  // A connection that breaks while checked out (PostgreSQL restarted, the network cut) emits
  // 'error' on the client, which the pool listens for only while the client is idle: unheard,
  // it would crash the worker. The failure also reaches the statement in flight, so the chunk
  // fails and its activity is retried.
  const ignoreBrokenConnection = () => undefined;
  client.on("error", ignoreBrokenConnection);
  try {
    await client.query(BEGIN_SQL);
    const copy = client.query(copyFrom(COPY_SQL));
    if (!copy.write(copyText)) await once(copy, "drain");
    copy.end();
    await finished(copy);
    const result = await client.query(INSERT_SQL, [companyId]);
    const inserted = result.rowCount ?? 0;
    // Every row new (a first import): no repeat to tell apart, so no lookup.
    const found =
      inserted < rows
        ? (
            await client.query<{ id: string; line: number; firstLine: number }>(CONFLICTS_SQL, [
              companyId,
            ])
          ).rows
        : [];
    await client.query("COMMIT");
    client.off("error", ignoreBrokenConnection);
    client.release();
    return {
      inserted,
      conflicts: found.map((c) => ({
        line: c.line,
        reason: conflictReason(c.id, c.firstLine),
      })),
    };
  } catch (error) {
    // A broken COPY or transaction is not worth rescuing: closing the connection rolls it back
    // (and drops the staging table with it). The listener stays: the client is being thrown away.
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/**
 * A 53-bit digest (cyrb53) of a row's values as COPY bytes, to tell an identical repeat of a
 * session from a conflicting one. Not cryptographic: at worst a forged repeat counts as a
 * duplicate instead of a conflict, and the first row is kept either way.
 */
function bytesDigest(bytes: Buffer, start: number, end: number): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = start; i < end; i++) {
    const b = bytes[i] ?? 0;
    h1 = Math.imul(h1 ^ b, 2654435761);
    h2 = Math.imul(h2 ^ b, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
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
    const rowStart = this.length;
    let digestEnd = rowStart;
    for (let i = 0; i < ROW_COLUMNS.length; i++) {
      const column = ROW_COLUMNS[i];
      if (!column) continue;
      if (i === DIGESTED_COLUMNS) digestEnd = this.length;
      if (i > 0) {
        this.#reserve(1);
        this.bytes[this.length++] = TAB;
      }
      this.#value(row[column[0]]);
    }
    const digest = bytesDigest(this.bytes, rowStart, digestEnd);
    this.#reserve(1);
    this.bytes[this.length++] = TAB;
    this.#value(digest);
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
   * `committed(outcome, rows)` runs once it has committed.
   */
  async flush(committed: (outcome: ChunkOutcome, rows: number) => void): Promise<void> {
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
    ).then((outcome) => committed(outcome, rows));
    // Observed by the next flush or by settled(); never an unhandled rejection meanwhile.
    writing.catch(() => undefined);
    this.#writing = writing;
  }

  /** Waits for the chunk being written; throws its failure. */
  async settled(): Promise<void> {
    await this.#writing;
  }
}
