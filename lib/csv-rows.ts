import type { Readable } from "node:stream";
import { readCsvRecords } from "./csv-records.ts";

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

/** Validates and coerces one CSV record (already split and trimmed by the CSV parser). */
export function parseSessionRow(fields: readonly string[], line: number): ParsedRow {
  try {
    if (fields.length < 3) {
      throw new RowError(
        `expected at least 3 columns (session_id, start_time, end_time), got ${fields.length}`,
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
    return {
      ok: true,
      row: {
        externalSessionId,
        startTimeRaw: required(fields, 1),
        endTimeRaw: required(fields, 2),
        ipAddress: text(fields, 3),
        countryCode: text(fields, 4),
        language: text(fields, 5),
        messagesSent: integer(fields, 6),
        sentimentRaw: text(fields, 7),
        escalatedRaw: text(fields, 8),
        forwardedHrRaw: text(fields, 9),
        fullTranscriptUrl: text(fields, 10),
        avgResponseTimeSeconds: decimal(fields, 11),
        tokens: integer(fields, 12),
        tokensEur: decimal(fields, 13),
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

/**
 * Streams a session CSV as rows and rejections, in file order, holding one record at a time.
 * Works on any byte stream (an HTTP body, a file).
 */
export async function* readSessionCsv(source: Readable): AsyncGenerator<CsvEvent> {
  for await (const record of readCsvRecords(source)) {
    if (record.kind === "error") {
      yield {
        kind: "rejected",
        line: record.line,
        reason: `unreadable CSV record: ${record.reason}`,
      };
      continue;
    }
    const parsed = parseSessionRow(record.fields, record.line);
    yield parsed.ok
      ? { kind: "row", row: parsed.row }
      : { kind: "rejected", line: record.line, reason: parsed.reason };
  }
}
