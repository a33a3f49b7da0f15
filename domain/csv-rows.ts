import type { Readable } from "node:stream";
import { type CsvRecord, readCsvRecordBatches } from "./csv-records.ts";
import { DateFormatError, sessionDateMs } from "./session-dates.ts";

/**
 * The companies' headerless 16-column session CSV, one record at a time. Raw values stay raw;
 * only the numeric columns are coerced, and a value that cannot be coerced rejects the row with
 * a reason an operator can act on.
 */

export const CSV_COLUMNS = [
  "session_id",
  "start_time",
  "end_time",
  "ip_address",
  "country",
  "language",
  "messages_sent",
  "sentiment",
  "escalated",
  "forwarded_hr",
  "full_transcript_url",
  "avg_response_time",
  "tokens",
  "tokens_eur",
  "category",
  "initial_msg",
] as const;

/** The columns of a SessionImport row that come from the CSV. */
export interface SessionImportRow {
  externalSessionId: string;
  startTimeRaw: string;
  endTimeRaw: string;
  ipAddress: string | null;
  countryCode: string | null;
  language: string | null;
  messagesSent: number | null;
  sentimentRaw: string | null;
  escalatedRaw: string | null;
  forwardedHrRaw: string | null;
  fullTranscriptUrl: string | null;
  avgResponseTimeSeconds: number | null;
  tokens: number | null;
  tokensEur: number | null;
  category: string | null;
  initialMessage: string | null;
  sourceLine: number;
}

export type ParsedRow = { ok: true; row: SessionImportRow } | { ok: false; reason: string };

const MAX_SESSION_ID_LENGTH = 255;
/** Longest value kept in one column; longer ones reject the row instead of bloating the table. */
export const MAX_FIELD_LENGTH = 64 * 1024;

class RowError extends Error {}

function text(fields: readonly string[], index: number): string | null {
  const value = fields[index];
  if (value === undefined || value === "") return null;
  return value;
}

function required(fields: readonly string[], index: number): string {
  const value = text(fields, index);
  if (value === null) throw new RowError(`${CSV_COLUMNS[index]} is empty`);
  return value;
}

function nonNegative<T extends number | null>(value: T, index: number): T {
  if (value !== null && value < 0) {
    throw new RowError(`column ${index + 1} ${CSV_COLUMNS[index]}: ${value} is negative`);
  }
  return value;
}

/**
 * The date of a column, for the plausibility checks at import. A year outside 1970-2100 rejects
 * the row; a value that is not a date at all is kept raw and fails at import processing, where
 * the session would be created (undefined here).
 */
function plausibleDate(fields: readonly string[], index: number, zone: string): number | undefined {
  try {
    return sessionDateMs(required(fields, index), zone);
  } catch (error) {
    if (!(error instanceof DateFormatError)) throw error;
    if (!error.implausible) return undefined;
    throw new RowError(`column ${index + 1} ${CSV_COLUMNS[index]}: ${error.message}`);
  }
}

function integer(fields: readonly string[], index: number): number | null {
  const value = text(fields, index);
  if (value === null) return null;
  const parsed = Number(value);
  if (
    !/^[+-]?\d+$/.test(value) ||
    !Number.isSafeInteger(parsed) ||
    Math.abs(parsed) > 2 ** 31 - 1
  ) {
    throw new RowError(
      `column ${index + 1} ${CSV_COLUMNS[index]}: expected a whole number, got "${clip(value)}"`,
    );
  }
  return parsed;
}

function decimal(fields: readonly string[], index: number): number | null {
  const value = text(fields, index);
  if (value === null) return null;
  // Accept a decimal comma too ("0,0010"): some exports are localised.
  const normalised = /^[+-]?\d+,\d+$/.test(value) ? value.replace(",", ".") : value;
  const parsed = Number(normalised);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(normalised) || !Number.isFinite(parsed)) {
    throw new RowError(
      `column ${index + 1} ${CSV_COLUMNS[index]}: expected a number, got "${clip(value)}"`,
    );
  }
  return parsed;
}

function clip(value: string): string {
  return value.length > 40 ? `${value.slice(0, 40)}…` : value;
}

/** The rejection of a row whose session id came earlier in the same file with other values. */
export function conflictReason(sessionId: string, firstLine: number): string {
  return `conflict: session_id "${clip(sessionId)}" appeared on line ${firstLine} with different data; the first row is kept`;
}

export interface SessionRowOptions {
  /** Zone of the wall-clock dates (IMPORT_TIME_ZONE), to compare start and end. */
  timeZone?: string;
}

/** Validates and coerces one CSV record (already split and trimmed by the CSV parser). */
export function parseSessionRow(
  fields: readonly string[],
  line: number,
  options: SessionRowOptions = {},
): ParsedRow {
  try {
    if (fields.length < 3) {
      throw new RowError(
        `expected at least 3 columns (session_id, start_time, end_time), got ${fields.length}`,
      );
    }
    // More columns than the format has means a field was split (e.g. an unquoted decimal
    // comma): every later value would land in the wrong column.
    if (fields.length > CSV_COLUMNS.length) {
      throw new RowError(
        `expected at most ${CSV_COLUMNS.length} columns, got ${fields.length} (an unquoted comma, e.g. a decimal comma, shifts every later column)`,
      );
    }
    for (let i = 0; i < Math.min(fields.length, CSV_COLUMNS.length); i++) {
      const value = fields[i] ?? "";
      if (value.includes("\u0000")) {
        throw new RowError(`column ${i + 1} ${CSV_COLUMNS[i]} contains a NUL byte`);
      }
      if (value.length > MAX_FIELD_LENGTH) {
        throw new RowError(
          `column ${i + 1} ${CSV_COLUMNS[i]} is ${value.length} characters long (limit ${MAX_FIELD_LENGTH})`,
        );
      }
    }
    const externalSessionId = required(fields, 0);
    if (externalSessionId.length > MAX_SESSION_ID_LENGTH) {
      throw new RowError(`session_id is longer than ${MAX_SESSION_ID_LENGTH} characters`);
    }
    const zone = options.timeZone ?? "UTC";
    const start = plausibleDate(fields, 1, zone);
    const end = plausibleDate(fields, 2, zone);
    if (start !== undefined && end !== undefined && end < start) {
      throw new RowError(
        `end_time ${clip(required(fields, 2))} is before start_time ${clip(required(fields, 1))}`,
      );
    }
    return {
      ok: true,
      row: {
        externalSessionId,
        startTimeRaw: required(fields, 1),
        endTimeRaw: required(fields, 2),
        ipAddress: text(fields, 3),
        countryCode: text(fields, 4),
        language: text(fields, 5),
        messagesSent: nonNegative(integer(fields, 6), 6),
        sentimentRaw: text(fields, 7),
        escalatedRaw: text(fields, 8),
        forwardedHrRaw: text(fields, 9),
        fullTranscriptUrl: text(fields, 10),
        avgResponseTimeSeconds: nonNegative(decimal(fields, 11), 11),
        tokens: nonNegative(integer(fields, 12), 12),
        tokensEur: nonNegative(decimal(fields, 13), 13),
        category: text(fields, 14),
        initialMessage: text(fields, 15),
        sourceLine: line,
      },
    };
  } catch (error) {
    if (error instanceof RowError) return { ok: false, reason: error.message };
    throw error;
  }
}

export type CsvEvent =
  | { kind: "row"; row: SessionImportRow }
  | { kind: "rejected"; line: number; reason: string };

/** The whole file is unusable (e.g. not comma-delimited): nothing of it is imported. */
export class CsvFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CsvFileError";
  }
}

/** Other delimiters an export may have used by mistake, with their names. */
const FOREIGN_DELIMITERS: readonly [string, string][] = [
  [";", "semicolons"],
  ["\t", "tabs"],
  ["|", "vertical bars"],
];

/**
 * A first record that is one field holding many semicolons (tabs, bars) is a file written with
 * another delimiter: reading it as CSV would turn each line into a one-column row.
 */
function foreignDelimiter(fields: readonly string[], line: number): string | undefined {
  if (fields.length !== 1) return undefined;
  const text = fields[0] ?? "";
  for (const [delimiter, name] of FOREIGN_DELIMITERS) {
    const count = text.split(delimiter).length - 1;
    if (count >= 5) {
      return `the file is not comma-delimited: line ${line} has no comma but ${count} ${name} (export it with "," as the delimiter)`;
    }
  }
  return undefined;
}

/**
 * Streams a session CSV as rows and rejections, in file order, holding one record at a time.
 * Works on any byte stream. Throws CsvFileError when the file as a whole is not a session CSV.
 * A repeated session id is passed on as a row: whether it is an identical repeat (a duplicate)
 * or a conflict is decided where the rows are stored (activities/session-import-insert.ts), so
 * memory does not grow with the number of sessions in a file.
 */
export async function* readSessionCsv(
  source: Readable,
  options: SessionRowOptions = {},
): AsyncGenerator<CsvEvent> {
  for await (const batch of readSessionCsvBatches(source, options)) yield* batch;
}

/** readSessionCsv in batches (one per chunk read from the source): no await per row. */
export async function* readSessionCsvBatches(
  source: Readable,
  options: SessionRowOptions = {},
): AsyncGenerator<CsvEvent[]> {
  let first = true;
  const event = (record: CsvRecord): CsvEvent => {
    if (record.kind === "error") {
      first = false;
      return {
        kind: "rejected",
        line: record.line,
        reason: `unreadable CSV record: ${record.reason}`,
      };
    }
    if (first) {
      first = false;
      const problem = foreignDelimiter(record.fields, record.line);
      if (problem) throw new CsvFileError(problem);
    }
    const parsed = parseSessionRow(record.fields, record.line, options);
    if (!parsed.ok) return { kind: "rejected", line: record.line, reason: parsed.reason };
    return { kind: "row", row: parsed.row };
  };
  for await (const records of readCsvRecordBatches(source)) yield records.map(event);
}
