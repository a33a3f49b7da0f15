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
 * Physical lines of a byte stream (LF, CRLF or lone CR), decoded as UTF-8, BOM dropped. A line
 * longer than maxChars is dropped as it streams (never held whole) and reported as OVERLONG.
 */
async function* physicalLines(
  source: Readable,
  maxChars: number,
): AsyncGenerator<string | typeof OVERLONG> {
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
    let start = 0;
    for (let i = 0; i < pending.length; i++) {
      const ch = pending[i];
      if (ch !== "\n" && ch !== "\r") continue;
      // A CR at the very end of a chunk may be the first half of CRLF: wait for the next chunk.
      if (ch === "\r" && i === pending.length - 1) break;
      if (discarding) {
        discarding = false;
        yield OVERLONG;
      } else {
        yield pending.slice(start, i);
      }
      if (ch === "\r" && pending[i + 1] === "\n") i++;
      start = i + 1;
    }
    pending = pending.slice(start);
    if (pending.length > maxChars) {
      discarding = true;
      pending = "";
    }
  }
  pending += decoder.decode();
  if (pending.endsWith("\r")) pending = pending.slice(0, -1);
  if (discarding) yield OVERLONG;
  else if (pending.length > 0) yield pending;
}

/** Records in file order, each with the line it starts on; broken ones as errors. */
export async function* readCsvRecords(
  source: Readable,
  options: CsvReadOptions = {},
): AsyncGenerator<CsvRecord> {
  const maxChars = options.maxRecordChars ?? 1024 * 1024;
  const maxLines = options.maxRecordLines ?? 100;
  // Lines of a record still open (inside quotes), with their numbers, so they can be replayed.
  let open: { text: string; line: number }[] = [];
  let lineNumber = 0;

  function* take(text: string, line: number): Generator<CsvRecord> {
    open.push({ text, line });
    const joined = open.map((l) => l.text).join("\n");
    const startLine = open[0]?.line ?? line;
    if (open.length === 1 && joined.trim() === "") {
      open = [];
      return;
    }
    const parsed = parseCsvRecord(joined);
    if (parsed.kind === "open") {
      if (joined.length <= maxChars && open.length < maxLines) return;
      yield* giveUp(startLine, `a quoted field is not closed within ${open.length} lines`);
      return;
    }
    open = [];
    if (parsed.kind === "error") yield { kind: "error", line: startLine, reason: parsed.reason };
    else if (joined.length > maxChars) {
      yield {
        kind: "error",
        line: startLine,
        reason: `record is longer than ${maxChars} characters`,
      };
    } else yield { kind: "record", fields: parsed.fields, line: startLine };
  }

  /** Rejects the record that never closed and reads the lines after its first one again. */
  function* giveUp(startLine: number, reason: string): Generator<CsvRecord> {
    const replay = open.slice(1);
    open = [];
    yield { kind: "error", line: startLine, reason };
    for (const l of replay) yield* take(l.text, l.line);
  }

  for await (const text of physicalLines(source, maxChars)) {
    lineNumber += 1;
    if (text === OVERLONG) {
      // An overlong line ends whatever record was open: reject both, keep going.
      if (open.length > 0)
        yield* giveUp(open[0]?.line ?? lineNumber, "a quoted field runs into an overlong line");
      yield {
        kind: "error",
        line: lineNumber,
        reason: `line is longer than ${maxChars} characters`,
      };
      continue;
    }
    yield* take(text, lineNumber);
  }
  while (open.length > 0) {
    yield* giveUp(
      open[0]?.line ?? lineNumber,
      "a quoted field is not closed before the end of the file",
    );
  }
}
