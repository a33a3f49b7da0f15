import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  type CsvEvent,
  MAX_FIELD_LENGTH,
  parseSessionRow,
  readSessionCsv,
} from "../../domain/csv-rows.ts";

const ROW =
  "284c6849-aaaa,30.04.2025 11:41:48,30.04.2025 11:45:02,31.176.221.57,BA,english,1,happy,no,no,https://example.test/chats/284c6849.txt,3.977,6537,0.0010,Greeting,Good day";

async function read(text: string | Buffer, chunkSize?: number): Promise<CsvEvent[]> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const chunks: Buffer[] = [];
  const size = chunkSize ?? bytes.length;
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  const events: CsvEvent[] = [];
  for await (const event of readSessionCsv(Readable.from(chunks))) events.push(event);
  return events;
}

const ids = (events: CsvEvent[]) =>
  events.map((e) => (e.kind === "row" ? e.row.externalSessionId : `!${e.line}`));

describe("session CSV rows", () => {
  it("maps the 16 documented columns, keeping raw text raw and coercing numbers", async () => {
    const [event] = await read(`${ROW}\n`);
    expect(event).toEqual({
      kind: "row",
      row: {
        externalSessionId: "284c6849-aaaa",
        startTimeRaw: "30.04.2025 11:41:48",
        endTimeRaw: "30.04.2025 11:45:02",
        ipAddress: "31.176.221.57",
        countryCode: "BA",
        language: "english",
        messagesSent: 1,
        sentimentRaw: "happy",
        escalatedRaw: "no",
        forwardedHrRaw: "no",
        fullTranscriptUrl: "https://example.test/chats/284c6849.txt",
        avgResponseTimeSeconds: 3.977,
        tokens: 6537,
        tokensEur: 0.001,
        category: "Greeting",
        initialMessage: "Good day",
        sourceLine: 1,
      },
    });
  });

  it("handles quoted fields with commas, doubled quotes and newlines", async () => {
    const text = `a,1,2,,,,,,,,,,,,,"Hello, ""team""\nsecond line"\nb,1,2\n`;
    const events = await read(text);
    expect(ids(events)).toEqual(["a", "b"]);
    const first = events[0];
    expect(first?.kind === "row" && first.row.initialMessage).toBe('Hello, "team"\nsecond line');
    // The record spanning two lines is numbered by its first line; the next starts on line 3.
    expect(events[1]?.kind === "row" && events[1].row.sourceLine).toBe(3);
  });

  it("accepts CRLF, lone CR and mixed line ends, also split across chunks", async () => {
    const text = "a,1,2\r\nb,1,2\nc,1,2\rd,1,2\r\n";
    for (const chunkSize of [1, 2, 3, 7, 1000]) {
      expect(ids(await read(text, chunkSize))).toEqual(["a", "b", "c", "d"]);
    }
  });

  it("skips empty and blank lines, drops a UTF-8 BOM and trims fields", async () => {
    const events = await read("\uFEFF  a , 1 , 2 \n\n   \n\r\nb,1,2");
    expect(ids(events)).toEqual(["a", "b"]);
    expect(events[0]?.kind === "row" && events[0].row.startTimeRaw).toBe("1");
    expect(events[1]?.kind === "row" && events[1].row.sourceLine).toBe(5);
  });

  it("keeps short ragged rows (missing columns are null); rejects too few or more than 16", async () => {
    const long = `${ROW},extra,columns,here`;
    const events = await read(`short,1,2\n${long}\nx,1\n`);
    expect(events[0]).toMatchObject({
      kind: "row",
      row: { externalSessionId: "short", ipAddress: null, tokens: null },
    });
    expect(events[1]).toEqual({
      kind: "rejected",
      line: 2,
      reason:
        "expected at most 16 columns, got 19 (an unquoted comma, e.g. a decimal comma, shifts every later column)",
    });
    expect(events[2]).toEqual({
      kind: "rejected",
      line: 3,
      reason: "expected at least 3 columns (session_id, start_time, end_time), got 2",
    });
  });

  it("rejects implausible years, an end before the start and negative counts, with the reason", async () => {
    const at = (start: string, end: string) => `s,${start},${end}`;
    const events = await read(
      [
        at("01.05.0000 10:00:00", "01.05.2025 10:00:00"),
        at("01.05.2025 10:00:00", "01.05.0025 10:00:00"),
        at("31.12.1969 23:59:59", "01.05.2025 10:00:00"),
        at("01.01.2101 00:00:00", "01.01.2101 00:00:01"),
        at("01.05.2025 10:00:01", "01.05.2025 10:00:00"),
        "n,01.05.2025 10:00:00,01.05.2025 10:00:00,,,,-1",
        "n,01.05.2025 10:00:00,01.05.2025 10:00:00,,,,,,,,,,-7",
        'n,01.05.2025 10:00:00,01.05.2025 10:00:00,,,,,,,,,,,"-0,5"',
        at("01.01.1970 00:00:00", "31.12.2100 23:59:59"),
      ].join("\n"),
    );
    const reasons = events.map((e) => (e.kind === "rejected" ? e.reason : "row"));
    expect(reasons).toEqual([
      'column 2 start_time: "01.05.0000 10:00:00" has the year 0000, outside 1970-2100',
      'column 3 end_time: "01.05.0025 10:00:00" has the year 0025, outside 1970-2100',
      'column 2 start_time: "31.12.1969 23:59:59" has the year 1969, outside 1970-2100',
      'column 2 start_time: "01.01.2101 00:00:00" has the year 2101, outside 1970-2100',
      "end_time 01.05.2025 10:00:00 is before start_time 01.05.2025 10:00:01",
      "column 7 messages_sent: -1 is negative",
      "column 13 tokens: -7 is negative",
      "column 14 tokens_eur: -0.5 is negative",
      "row",
    ]);
  });

  it("a value that is not a date at all is kept raw (it fails at import processing)", () => {
    expect(parseSessionRow(["x", "soon", "later"], 1).ok).toBe(true);
    expect(parseSessionRow(["x", "31.02.2025 10:00:00", "01.03.2025 10:00:00"], 1).ok).toBe(true);
  });

  it("rejects a file that is not comma-delimited as a whole, naming the delimiter", async () => {
    await expect(
      read(`${ROW.replaceAll(",", ";")}\n${ROW.replaceAll(",", ";")}\n`),
    ).rejects.toThrow(
      'the file is not comma-delimited: line 1 has no comma but 15 semicolons (export it with "," as the delimiter)',
    );
    await expect(read(`\n${ROW.replaceAll(",", "\t")}\n`)).rejects.toThrow(
      "line 2 has no comma but 15 tabs",
    );
    // A one-column line later in a comma-delimited file is just a rejected row.
    const events = await read(`${ROW}\n${ROW.replaceAll(",", ";")}\n`);
    expect(events.map((e) => e.kind)).toEqual(["row", "rejected"]);
  });

  it("passes a repeated session id on as a row: storage tells duplicates from conflicts", async () => {
    // test/session-import-copy.test.ts checks what the database then makes of them.
    const other = ROW.replace("Good day", "Goodbye");
    const events = await read(`${ROW}\n${ROW}\n${other}\n`);
    expect(events.map((e) => e.kind)).toEqual(["row", "row", "row"]);
    expect(events.map((e) => e.kind === "row" && e.row.sourceLine)).toEqual([1, 2, 3]);
  });

  it("rejects bad numbers with the column and value, and imports the rest", async () => {
    const events = await read(
      'a,1,2,,,,many\nb,1,2,,,,,,,,,fast\nc,1,2,,,,,,,,,,12.5\nd,1,2,,,,3,,,,,"0,5",7,"0,0010"\n',
    );
    expect(events.slice(0, 3)).toEqual([
      {
        kind: "rejected",
        line: 1,
        reason: 'column 7 messages_sent: expected a whole number, got "many"',
      },
      {
        kind: "rejected",
        line: 2,
        reason: 'column 12 avg_response_time: expected a number, got "fast"',
      },
      {
        kind: "rejected",
        line: 3,
        reason: 'column 13 tokens: expected a whole number, got "12.5"',
      },
    ]);
    // A decimal comma (quoted, as CSV needs) is read as a decimal point.
    expect(events[3]).toMatchObject({
      kind: "row",
      row: { avgResponseTimeSeconds: 0.5, tokens: 7, tokensEur: 0.001 },
    });
  });

  it("rejects empty required columns, NUL bytes and oversized fields", async () => {
    const huge = "x".repeat(MAX_FIELD_LENGTH + 1);
    const events = await read(
      `,1,2\na,,2\nb,1,2,,,,,,,,,,,,,bad\u0000nul\nc,1,2,,,,,,,,,,,,,${huge}\nd,1,2\n`,
    );
    expect(events.map((e) => (e.kind === "rejected" ? e.reason : "ok"))).toEqual([
      "session_id is empty",
      "start_time is empty",
      "column 16 initial_msg contains a NUL byte",
      `column 16 initial_msg is ${MAX_FIELD_LENGTH + 1} characters long (limit ${MAX_FIELD_LENGTH})`,
      "ok",
    ]);
  });

  it("rejects a stray quote or an unterminated quote as one record and keeps the following ones", async () => {
    expect(ids(await read('a,1,2\nb,"x"y,2\nc,1,2\n'))).toEqual(["a", "!2", "c"]);
    const unterminated = await read('a,1,2\nb,"never closed,2\nc,1,2\nd,1,2\n');
    expect(ids(unterminated)).toEqual(["a", "!2", "c", "d"]);
    expect(unterminated[1]).toMatchObject({ reason: expect.stringContaining("not closed") });
  });

  it("does not hold an endless line in memory: it is rejected and reading goes on", async () => {
    const endless = "z".repeat(3 * 1024 * 1024);
    expect(ids(await read(`a,1,2\n${endless}\nb,1,2\n`, 64 * 1024))).toEqual(["a", "!2", "b"]);
  });

  it("decodes invalid UTF-8 as replacement characters instead of failing", async () => {
    const bytes = Buffer.concat([
      Buffer.from("a,1,2,,,,,,,,,,,,,caf"),
      Buffer.from([0xe9]),
      Buffer.from("\n"),
    ]);
    const [event] = await read(bytes);
    expect(event?.kind === "row" && event.row.initialMessage).toBe("caf\uFFFD");
  });

  it("parseSessionRow names the problem for each malformed row", () => {
    expect(parseSessionRow(["only-id"], 9)).toEqual({
      ok: false,
      reason: "expected at least 3 columns (session_id, start_time, end_time), got 1",
    });
    expect(parseSessionRow(["x".repeat(256), "1", "2"], 1)).toEqual({
      ok: false,
      reason: "session_id is longer than 255 characters",
    });
  });
});
