import type { Readable } from "node:stream";

/**
 * A streaming CSV record reader that survives broken input. csv-parse (tried first) loses every
 * record after a stray or unterminated quote, even with skip_records_with_error; an import must
 * reject that one record and keep the rest. So: records are built from physical lines, a quoted
 * field may span lines up to a bound, and a record that cannot be closed is rejected while the
 * lines it swallowed are read again as records of their own.
 */

export type CsvRecord =
  | { kind: "record"; fields: string[]; line: number }
  | { kind: "error"; line: number; reason: string };

export interface CsvReadOptions {
  /** Longest logical record in characters. */
  maxRecordChars?: number;
  /** Most physical lines one quoted field may span. */
  maxRecordLines?: number;
}

type FieldParse =
  | { kind: "fields"; fields: string[] }
  | { kind: "open" }
  | { kind: "error"; reason: string };

const isBlank = (ch: string | undefined) => ch === " " || ch === "\t";

/** Splits one logical record; reports an unterminated quote as `open` so the caller can extend it. */
export function parseCsvRecord(text: string): FieldParse {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (isBlank(text[i])) i++;
    if (text[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close === -1) return { kind: "open" };
        value += text.slice(i, close);
        if (text[close + 1] === '"') {
          value += '"';
          i = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      while (isBlank(text[i])) i++;
      if (i < text.length && text[i] !== ",") {
        return {
          kind: "error",
          reason: `unexpected text after a closing quote in field ${fields.length + 1}`,
        };
      }
      fields.push(value.trim());
    } else {
      const comma = text.indexOf(",", i);
      const end = comma === -1 ? text.length : comma;
      fields.push(text.slice(i, end).trim());
      i = end;
    }
    if (i >= text.length) return { kind: "fields", fields };
    i++; // the comma
    if (i >= text.length) {
      fields.push("");
      return { kind: "fields", fields };
    }
  }
}

/** Marks a physical line that was cut because it passed the length limit. */
const OVERLONG = Symbol("overlong line");

/**
 * Physical lines of a byte stream (LF, CRLF or lone CR), decoded as UTF-8, BOM dropped, one batch
 * per chunk read (an await per line cost more than the parsing). A line longer than maxChars is
 * dropped as it streams (never held whole) and reported as OVERLONG.
 */
async function* physicalLines(
  source: Readable,
  maxChars: number,
): AsyncGenerator<(string | typeof OVERLONG)[]> {
  const decoder = new TextDecoder("utf-8");
  let pending = "";
  let first = true;
  let discarding = false;
  for await (const chunk of source) {
    pending +=
      typeof chunk === "string" ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    if (first && pending.length > 0) {
      if (pending.charCodeAt(0) === 0xfeff) pending = pending.slice(1);
      first = false;
    }
    const lines: (string | typeof OVERLONG)[] = [];
    let start = 0;
    for (let i = 0; i < pending.length; i++) {
      const ch = pending.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      // A CR at the very end of a chunk may be the first half of CRLF: wait for the next chunk.
      if (ch === 13 && i === pending.length - 1) break;
      if (discarding) {
        discarding = false;
        lines.push(OVERLONG);
      } else {
        lines.push(pending.slice(start, i));
      }
      if (ch === 13 && pending.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    pending = pending.slice(start);
    if (pending.length > maxChars) {
      discarding = true;
      pending = "";
    }
    if (lines.length > 0) yield lines;
  }
  pending += decoder.decode();
  if (pending.endsWith("\r")) pending = pending.slice(0, -1);
  if (discarding) yield [OVERLONG];
  else if (pending.length > 0) yield [pending];
}

/** Records in file order, each with the line it starts on; broken ones as errors. */
export async function* readCsvRecords(
  source: Readable,
  options: CsvReadOptions = {},
): AsyncGenerator<CsvRecord> {
  for await (const batch of readCsvRecordBatches(source, options)) yield* batch;
}

/** Records in file order, in batches (one per chunk read from the source). */
export async function* readCsvRecordBatches(
  source: Readable,
  options: CsvReadOptions = {},
): AsyncGenerator<CsvRecord[]> {
  const maxChars = options.maxRecordChars ?? 1024 * 1024;
  const maxLines = options.maxRecordLines ?? 100;
  // Lines of a record still open (inside quotes), with their numbers, so they can be replayed.
  let open: { text: string; line: number }[] = [];
  let lineNumber = 0;
  let out: CsvRecord[] = [];

  function take(text: string, line: number): void {
    // The common case, a record on one line, without joining anything.
    const joined = open.length === 0 ? text : `${open.map((l) => l.text).join("\n")}\n${text}`;
    const startLine = open[0]?.line ?? line;
    if (open.length === 0 && joined.trim() === "") return;
    const parsed = parseCsvRecord(joined);
    if (parsed.kind === "open") {
      open.push({ text, line });
      if (joined.length <= maxChars && open.length < maxLines) return;
      giveUp(startLine, `a quoted field is not closed within ${open.length} lines`);
      return;
    }
    open = [];
    if (parsed.kind === "error")
      out.push({ kind: "error", line: startLine, reason: parsed.reason });
    else if (joined.length > maxChars) {
      out.push({
        kind: "error",
        line: startLine,
        reason: `record is longer than ${maxChars} characters`,
      });
    } else out.push({ kind: "record", fields: parsed.fields, line: startLine });
  }

  /** Rejects the record that never closed and reads the lines after its first one again. */
  function giveUp(startLine: number, reason: string): void {
    const replay = open.slice(1);
    open = [];
    out.push({ kind: "error", line: startLine, reason });
    for (const l of replay) take(l.text, l.line);
  }

  for await (const lines of physicalLines(source, maxChars)) {
    for (const text of lines) {
      lineNumber += 1;
      if (text === OVERLONG) {
        // An overlong line ends whatever record was open: reject both, keep going.
        if (open.length > 0)
          giveUp(open[0]?.line ?? lineNumber, "a quoted field runs into an overlong line");
        out.push({
          kind: "error",
          line: lineNumber,
          reason: `line is longer than ${maxChars} characters`,
        });
        continue;
      }
      take(text, lineNumber);
    }
    if (out.length > 0) {
      yield out;
      out = [];
    }
  }
  while (open.length > 0) {
    giveUp(open[0]?.line ?? lineNumber, "a quoted field is not closed before the end of the file");
  }
  if (out.length > 0) yield out;
}
