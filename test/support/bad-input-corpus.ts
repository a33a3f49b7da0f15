import type { IncomingMessage, ServerResponse } from "node:http";
import { gzipSync } from "node:zlib";
import { basicAuthOk } from "./harness.ts";

/**
 * Hostile and broken CSV and transcript responses, each with the outcome the pipeline must
 * produce. Every CSV case is one company whose csvUrl is its own route; every transcript case is
 * one company whose CSV has one row pointing at the case's transcript route.
 */

export type Handler = (req: IncomingMessage, res: ServerResponse, hits: number) => void;

/** Limits the test stack runs with (small, so the limits are reached quickly). */
export const LIMITS = {
  CSV_IMPORT_MAX_BYTES: 1_500_000,
  CSV_IMPORT_TIMEOUT: 5_000,
  /** The activity keeps 2 s of CSV_IMPORT_TIMEOUT for itself (activities/csv-import.ts). */
  CSV_FETCH_BUDGET: 3_000,
  TRANSCRIPT_MAX_BYTES: 4_096,
  TRANSCRIPT_FETCH_TIMEOUT: 1_500,
} as const;

const START = "01.05.2025 10:00:00";
const END = "01.05.2025 10:05:00";

/** A complete 16-column row. */
export function row(id: string, transcriptUrl = "", initialMsg = "Hello"): string {
  return `${id},${START},${END},10.0.0.1,NL,nl,2,happy,no,no,${transcriptUrl},1.5,100,0.001,Greeting,${initialMsg}`;
}

const csv = (body: string | Buffer, type = "text/csv"): Handler => {
  return (_req, res) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(200, { "content-type": type, "content-length": bytes.length }).end(bytes);
  };
};

const status =
  (code: number, body = "error"): Handler =>
  (_req, res) => {
    res.writeHead(code, { "content-type": "text/plain" }).end(body);
  };

const redirect =
  (location: string): Handler =>
  (_req, res) => {
    res.writeHead(302, { location }).end();
  };

/** Headers at once, then one byte a second until the client gives up. */
const trickle =
  (text: string): Handler =>
  (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    let i = 0;
    const timer = setInterval(() => {
      if (i >= text.length || res.destroyed) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(text.slice(i, i + 1));
      i++;
    }, 1_000);
    res.on("close", () => clearInterval(timer));
  };

/** How long each endless response stayed open (ms), by route: a cut response must be closed. */
export const endlessLifetimes = new Map<string, number>();

/** Writes `head`, then `filler` forever (with back-pressure) until the client disconnects. */
const endless =
  (head: string, filler: string): Handler =>
  (req, res) => {
    const opened = Date.now();
    res.on("close", () => endlessLifetimes.set(req.url ?? "", Date.now() - opened));
    res.writeHead(200, { "content-type": "text/csv" });
    res.write(head);
    const chunk = Buffer.from(filler);
    let open = true;
    res.on("close", () => {
      open = false;
    });
    const pump = () => {
      while (open && res.write(chunk)) {
        /* keep writing */
      }
      if (open) res.once("drain", pump);
    };
    pump();
  };

/** Writes the body in chunks without a content-length (chunked transfer encoding). */
const chunked =
  (body: string, size: number): Handler =>
  (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    for (let i = 0; i < body.length; i += size) res.write(body.slice(i, i + size));
    res.end();
  };

/** Deterministic bytes in 0..255, with LF, CR, comma and quote turned into NUL. */
function noise(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const b = (x >> 16) & 0xff;
    out[i] = b === 0x0a || b === 0x0d || b === 0x2c || b === 0x22 ? 0 : b;
  }
  return out;
}

const FEW_COLUMNS = "expected at least 3 columns (session_id, start_time, end_time), got";

export interface CsvOutcome {
  status: "imported" | "failed";
  /** Session ids that end up imported for the company (exact). */
  ids: string[];
  rowsRead: number;
  rejections: { line: number; reason: string | RegExp }[];
  /** Substring (or pattern) of the per-company error; absent for imported companies. */
  error?: string | RegExp;
  /** Requests the server saw on the case's route (retries included). */
  requests?: number;
  /** Expected initial_msg of one imported row, to check the value survived. */
  initialMessage?: { id: string; value: string };
}

export interface CsvCase {
  name: string;
  /** The route served (or the URL given to the company, for URLs that are not ours). */
  route: string;
  expected: string;
  /** The company's csvUrl; defaults to `${base}${route}`. */
  url?: (base: string, refusedPort: number) => string;
  credentials?: { username: string; password: string };
  serve?: Handler;
  /** Extra routes the case needs (redirect targets). */
  extraRoutes?: Record<string, Handler>;
  outcome: CsvOutcome;
}

const LATIN1 = Buffer.from(`${row("latin1-1", "", "Grüße aus München")}\n`, "latin1");

const LONG_LINE_CHARS = 1024 * 1024 + 100_000;

export function csvCorpus(): CsvCase[] {
  return [
    {
      name: "canary",
      route: "/csv/canary",
      expected: "2 rows imported (with transcript URLs)",
      serve: (req, res) => {
        const base = `http://${req.headers.host}`;
        csv(`${row("canary-1", `${base}/t/canary`)}\n${row("canary-2", `${base}/t/canary`)}\n`)(
          req,
          res,
          0,
        );
      },
      outcome: { status: "imported", ids: ["canary-1", "canary-2"], rowsRead: 2, rejections: [] },
    },
    {
      name: "utf8-bom",
      route: "/csv/utf8-bom",
      expected: "BOM dropped; session id has no BOM",
      serve: csv(`\uFEFF${row("bom-1")}\n${row("bom-2")}\n`),
      outcome: { status: "imported", ids: ["bom-1", "bom-2"], rowsRead: 2, rejections: [] },
    },
    {
      name: "crlf",
      route: "/csv/crlf",
      expected: "CRLF line ends: 3 rows",
      serve: csv(`${row("crlf-1")}\r\n${row("crlf-2")}\r\n${row("crlf-3")}\r\n`),
      outcome: {
        status: "imported",
        ids: ["crlf-1", "crlf-2", "crlf-3"],
        rowsRead: 3,
        rejections: [],
        initialMessage: { id: "crlf-3", value: "Hello" },
      },
    },
    {
      name: "mixed-eol",
      route: "/csv/mixed-eol",
      expected: "LF, CRLF and lone CR in one file: 4 rows",
      serve: csv(`${row("eol-1")}\n${row("eol-2")}\r\n${row("eol-3")}\r${row("eol-4")}`),
      outcome: {
        status: "imported",
        ids: ["eol-1", "eol-2", "eol-3", "eol-4"],
        rowsRead: 4,
        rejections: [],
        initialMessage: { id: "eol-3", value: "Hello" },
      },
    },
    {
      name: "quoted-commas-newlines",
      route: "/csv/quoted",
      expected: 'quoted field with commas, "" and newlines kept whole',
      serve: csv(`${row("q-1", "", '"Hi, team ""A""\nsecond line, too"')}\n${row("q-2")}\n`),
      outcome: {
        status: "imported",
        ids: ["q-1", "q-2"],
        rowsRead: 2,
        rejections: [],
        initialMessage: { id: "q-1", value: 'Hi, team "A"\nsecond line, too' },
      },
    },
    {
      name: "unterminated-quote",
      route: "/csv/unterminated",
      expected: "line 2 rejected; lines after it imported",
      serve: csv(
        `${row("u-1")}\n${row("u-2", "", '"never closed')}\n${row("u-3")}\n${row("u-4")}\n`,
      ),
      outcome: {
        status: "imported",
        ids: ["u-1", "u-3", "u-4"],
        rowsRead: 4,
        rejections: [
          {
            line: 2,
            reason:
              "unreadable CSV record: a quoted field is not closed before the end of the file",
          },
        ],
      },
    },
    {
      name: "stray-quote",
      route: "/csv/stray-quote",
      expected: "line 2 rejected (text after a closing quote)",
      serve: csv(
        `${row("s-1")}\ns-2,${START},${END},10.0.0.1,NL,nl,2,"happy"x,no,no\n${row("s-3")}\n`,
      ),
      outcome: {
        status: "imported",
        ids: ["s-1", "s-3"],
        rowsRead: 3,
        rejections: [
          {
            line: 2,
            reason: "unreadable CSV record: unexpected text after a closing quote in field 8",
          },
        ],
      },
    },
    {
      name: "ragged-too-few",
      route: "/csv/ragged-few",
      expected: "rows with 1 and 2 columns rejected; 3 columns is enough",
      serve: csv(`few-1\nfew-2,${START}\nfew-3,${START},${END}\n${row("few-4")}\n`),
      outcome: {
        status: "imported",
        ids: ["few-3", "few-4"],
        rowsRead: 4,
        rejections: [
          { line: 1, reason: `${FEW_COLUMNS} 1` },
          { line: 2, reason: `${FEW_COLUMNS} 2` },
        ],
      },
    },
    {
      name: "ragged-too-many",
      route: "/csv/ragged-many",
      expected: "20 columns: rejected with the count (values would sit in the wrong columns)",
      serve: csv(`${row("many-1")},x,y,z,w\n${row("many-2")}\n`),
      outcome: {
        status: "imported",
        ids: ["many-2"],
        rowsRead: 2,
        rejections: [{ line: 1, reason: /^expected at most 16 columns, got 20 \(/ }],
      },
    },
    {
      name: "decimal-comma-shift",
      route: "/csv/decimal-comma",
      expected: "an unquoted decimal comma makes 17 columns: rejected, not stored shifted",
      serve: csv(
        `dc-1,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,1.5,100,0,0010,Greeting,Hi\n${row("dc-2")}\n`,
      ),
      outcome: {
        status: "imported",
        ids: ["dc-2"],
        rowsRead: 2,
        rejections: [
          {
            line: 1,
            reason:
              "expected at most 16 columns, got 17 (an unquoted comma, e.g. a decimal comma, shifts every later column)",
          },
        ],
      },
    },
    {
      name: "implausible-years",
      route: "/csv/years",
      expected: "years 0000, 0025 and 2150 rejected with the reason (no 1900, no 1925)",
      serve: csv(
        [
          `yr-0000,01.05.0000 10:00:00,${END}`,
          `yr-0025,01.05.0025 10:00:00,${END}`,
          `yr-2150,${START},01.05.2150 10:00:00`,
          row("yr-ok"),
        ].join("\n"),
      ),
      outcome: {
        status: "imported",
        ids: ["yr-ok"],
        rowsRead: 4,
        rejections: [
          {
            line: 1,
            reason:
              'column 2 start_time: "01.05.0000 10:00:00" has the year 0000, outside 1970-2100',
          },
          {
            line: 2,
            reason:
              'column 2 start_time: "01.05.0025 10:00:00" has the year 0025, outside 1970-2100',
          },
          {
            line: 3,
            reason: 'column 3 end_time: "01.05.2150 10:00:00" has the year 2150, outside 1970-2100',
          },
        ],
      },
    },
    {
      name: "end-before-start",
      route: "/csv/end-before-start",
      expected: "an end earlier than the start is rejected",
      serve: csv(`eb-1,${END},${START}\n${row("eb-2")}\n`),
      outcome: {
        status: "imported",
        ids: ["eb-2"],
        rowsRead: 2,
        rejections: [{ line: 1, reason: `end_time ${START} is before start_time ${END}` }],
      },
    },
    {
      name: "negative-numbers",
      route: "/csv/negative",
      expected: "negative messages_sent, avg_response_time, tokens, tokens_eur rejected",
      serve: csv(
        [
          `neg-1,${START},${END},10.0.0.1,NL,nl,-2,happy,no,no,,1.5,100,0.001,Greeting,Hi`,
          `neg-2,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,-1.5,100,0.001,Greeting,Hi`,
          `neg-3,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,1.5,-100,0.001,Greeting,Hi`,
          `neg-4,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,1.5,100,-0.001,Greeting,Hi`,
          row("neg-ok"),
        ].join("\n"),
      ),
      outcome: {
        status: "imported",
        ids: ["neg-ok"],
        rowsRead: 5,
        rejections: [
          { line: 1, reason: "column 7 messages_sent: -2 is negative" },
          { line: 2, reason: "column 12 avg_response_time: -1.5 is negative" },
          { line: 3, reason: "column 13 tokens: -100 is negative" },
          { line: 4, reason: "column 14 tokens_eur: -0.001 is negative" },
        ],
      },
    },
    {
      name: "semicolon-delimited",
      route: "/csv/semicolons",
      expected: "a semicolon-delimited file is rejected as a whole, permanent, nothing stored",
      serve: csv(`${row("semi-1").replaceAll(",", ";")}\n${row("semi-2").replaceAll(",", ";")}\n`),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error:
          'the file is not comma-delimited: line 1 has no comma but 15 semicolons (export it with "," as the delimiter)',
        requests: 1,
      },
    },
    {
      name: "conflicting-repeat",
      route: "/csv/conflict",
      expected: "the same session id again with other data: a conflict rejection, first row kept",
      serve: csv(`${row("cf-1")}\n${row("cf-2")}\n${row("cf-1", "", "Different")}\n`),
      outcome: {
        status: "imported",
        ids: ["cf-1", "cf-2"],
        rowsRead: 3,
        rejections: [
          {
            line: 3,
            reason:
              'conflict: session_id "cf-1" appeared on line 1 with different data; the first row is kept',
          },
        ],
        initialMessage: { id: "cf-1", value: "Hello" },
      },
    },
    {
      name: "invalid-dates",
      route: "/csv/bad-dates",
      expected: "kept raw at import; FAILED at import processing with the reason",
      serve: csv(
        `${row("date-ok")}\ndate-feb31,31.02.2025 10:00:00,${END}\ndate-iso,${START},2025-05-01T10:05:00Z\n`,
      ),
      outcome: {
        status: "imported",
        ids: ["date-feb31", "date-iso", "date-ok"],
        rowsRead: 3,
        rejections: [],
      },
    },
    {
      name: "invalid-numbers",
      route: "/csv/bad-numbers",
      expected: "rows with bad numbers rejected with column and value",
      serve: csv(
        [
          `num-1,${START},${END},10.0.0.1,NL,nl,lots,happy,no,no,,1.5,100,0.001,Greeting,Hi`,
          `num-2,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,fast,100,0.001,Greeting,Hi`,
          `num-3,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,1.5,99999999999,0.001,Greeting,Hi`,
          `num-4,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,1.5,100,1.2.3,Greeting,Hi`,
          `num-5,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,Infinity,100,0.001,Greeting,Hi`,
          `num-6,${START},${END},10.0.0.1,NL,nl,2.5,happy,no,no,,1.5,100,"0,0010",Greeting,Hi`,
          `num-7,${START},${END},10.0.0.1,NL,nl,2,happy,no,no,,1.5,100,"0,0010",Greeting,Hi`,
        ].join("\n"),
      ),
      outcome: {
        status: "imported",
        ids: ["num-7"],
        rowsRead: 7,
        rejections: [
          { line: 1, reason: 'column 7 messages_sent: expected a whole number, got "lots"' },
          { line: 2, reason: 'column 12 avg_response_time: expected a number, got "fast"' },
          { line: 3, reason: 'column 13 tokens: expected a whole number, got "99999999999"' },
          { line: 4, reason: 'column 14 tokens_eur: expected a number, got "1.2.3"' },
          { line: 5, reason: 'column 12 avg_response_time: expected a number, got "Infinity"' },
          { line: 6, reason: 'column 7 messages_sent: expected a whole number, got "2.5"' },
        ],
      },
    },
    {
      name: "huge-field",
      route: "/csv/huge-field",
      expected: "row with a 70,000-character field rejected; others imported",
      serve: csv(`${row("hf-1")}\n${row("hf-2", "", "y".repeat(70_000))}\n${row("hf-3")}\n`),
      outcome: {
        status: "imported",
        ids: ["hf-1", "hf-3"],
        rowsRead: 3,
        rejections: [
          { line: 2, reason: "column 16 initial_msg is 70000 characters long (limit 65536)" },
        ],
      },
    },
    {
      name: "line-over-1MiB",
      route: "/csv/long-line",
      expected: "line 2 (1.1 MiB) rejected without being held; line 3 imported",
      serve: csv(`${row("ll-1")}\n${"z".repeat(LONG_LINE_CHARS)}\n${row("ll-3")}\n`),
      outcome: {
        status: "imported",
        ids: ["ll-1", "ll-3"],
        rowsRead: 3,
        rejections: [
          {
            line: 2,
            reason: /^unreadable CSV record: (line|record) is longer than 1048576 characters$/,
          },
        ],
      },
    },
    {
      name: "latin-1",
      route: "/csv/latin1",
      expected: "undeclared charset read as UTF-8: invalid bytes become U+FFFD, row kept",
      serve: csv(LATIN1),
      outcome: {
        status: "imported",
        ids: ["latin1-1"],
        rowsRead: 1,
        rejections: [],
        initialMessage: { id: "latin1-1", value: "Gr\uFFFD\uFFFDe aus M\uFFFDnchen" },
      },
    },
    {
      name: "binary",
      route: "/csv/binary",
      expected: "garbage lines rejected (1 column / NUL byte); trailing good row imported",
      serve: csv(
        Buffer.concat([
          Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
          Buffer.from([0x00, 0x01, 0x02, 0x2c, 0xff, 0xfe, 0x00, 0x2c, 0x00, 0x00, 0x0a]),
          Buffer.from([0x41]),
          noise(300, 42),
          Buffer.from(`\n${row("bin-ok")}\n`),
        ]),
        "application/octet-stream",
      ),
      outcome: {
        status: "imported",
        ids: ["bin-ok"],
        rowsRead: 5,
        rejections: [
          { line: 1, reason: `${FEW_COLUMNS} 1` },
          { line: 2, reason: `${FEW_COLUMNS} 1` },
          { line: 3, reason: "column 1 session_id contains a NUL byte" },
          { line: 4, reason: `${FEW_COLUMNS} 1` },
        ],
      },
    },
    {
      name: "empty-body",
      route: "/csv/empty",
      expected: "imported, 0 rows",
      serve: csv(""),
      outcome: { status: "imported", ids: [], rowsRead: 0, rejections: [] },
    },
    {
      name: "whitespace-only",
      route: "/csv/whitespace",
      expected: "imported, 0 rows (blank lines skipped)",
      serve: csv("   \n\t\r\n  \r \n\n"),
      outcome: { status: "imported", ids: [], rowsRead: 0, rejections: [] },
    },
    {
      name: "html-error-page",
      route: "/csv/html",
      expected: "failed (permanent, 1 request): HTML page instead of CSV",
      serve: csv(
        "<!doctype html><html><body><h1>Oops</h1>a,b,c</body></html>",
        "text/html; charset=utf-8",
      ),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error:
          "expected CSV but the server sent an HTML page (content-type text/html; charset=utf-8)",
        requests: 1,
      },
    },
    {
      name: "gzip",
      route: "/csv/gzip",
      expected: "content-encoding gzip decompressed and imported",
      serve: (_req, res) => {
        const body = gzipSync(`${row("gz-1")}\n${row("gz-2")}\n`);
        res
          .writeHead(200, {
            "content-type": "text/csv",
            "content-encoding": "gzip",
            "content-length": body.length,
          })
          .end(body);
      },
      outcome: {
        status: "imported",
        ids: ["gz-1", "gz-2"],
        rowsRead: 2,
        rejections: [],
        initialMessage: { id: "gz-2", value: "Hello" },
      },
    },
    {
      name: "over-max-bytes",
      route: "/csv/too-big",
      expected: "declared 2 MB > CSV_IMPORT_MAX_BYTES: refused before reading, permanent",
      serve: csv(`${row("big-1")}\n${"b".repeat(2_000_000)}\n`),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: `bytes, over the limit of ${LIMITS.CSV_IMPORT_MAX_BYTES}`,
        requests: 1,
      },
    },
    {
      name: "endless-stream",
      route: "/csv/endless",
      expected: "cut at CSV_IMPORT_MAX_BYTES, permanent; rows before the cut kept",
      serve: endless(`${row("end-1")}\n${row("end-2")}\n`, "e".repeat(64 * 1024)),
      outcome: {
        status: "failed",
        ids: ["end-1", "end-2"],
        rowsRead: 2,
        rejections: [],
        error: `the response is larger than the limit of ${LIMITS.CSV_IMPORT_MAX_BYTES} bytes`,
        requests: 1,
      },
    },
    {
      name: "one-byte-a-second",
      route: "/csv/slow",
      expected: "timeout is transient: 3 attempts, then failed with the timeout",
      serve: trickle(`${row("slow-1")}\n`),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        // Our own timeout normally; Temporal's start-to-close timeout when a loaded machine
        // delays the activity so much that the server's clock runs out first.
        error: new RegExp(
          `timed out after ${LIMITS.CSV_FETCH_BUDGET} ms|activity StartToClose timeout`,
        ),
        requests: 3,
      },
    },
    {
      name: "redirect-once",
      route: "/csv/redirect-once",
      expected: "one redirect followed",
      serve: redirect("/csv/redirect-target"),
      extraRoutes: { "/csv/redirect-target": csv(`${row("redir-1")}\n`) },
      outcome: { status: "imported", ids: ["redir-1"], rowsRead: 1, rejections: [], requests: 1 },
    },
    {
      name: "redirect-loop",
      route: "/csv/loop/0",
      expected: "more than 5 redirects refused (6 requests), permanent",
      serve: (req, res) => {
        const n = Number(req.url?.split("/").at(-1) ?? 0);
        redirect(`/csv/loop/${n + 1}`)(req, res, 0);
      },
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "more than 5 redirects",
        // The first hop; the whole chain of 6 requests is checked on its own.
        requests: 1,
      },
    },
    {
      name: "redirect-to-file",
      route: "/csv/redirect-file",
      expected: "redirect to file:// refused, permanent",
      serve: redirect("file:///etc/passwd"),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "redirect to a file: URL refused",
        requests: 1,
      },
    },
    {
      name: "redirect-to-ftp",
      route: "/csv/redirect-ftp",
      expected: "redirect to ftp:// refused, permanent",
      serve: redirect("ftp://127.0.0.1/export.csv"),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "redirect to a ftp: URL refused",
        requests: 1,
      },
    },
    {
      name: "http-401",
      route: "/csv/auth-401",
      expected: "wrong credentials, 401: permanent, 1 request",
      credentials: { username: "acme", password: "wrong-password" },
      serve: (req, res) => {
        if (basicAuthOk(req, "acme", "right-password")) csv(`${row("a401")}\n`)(req, res, 0);
        else res.writeHead(401, { "www-authenticate": "Basic" }).end("unauthorised");
      },
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "HTTP 401: the server refused the credentials",
        requests: 1,
      },
    },
    {
      name: "http-403",
      route: "/csv/auth-403",
      expected: "wrong credentials, 403: permanent, 1 request",
      credentials: { username: "acme", password: "wrong-password" },
      serve: (req, res) => {
        if (basicAuthOk(req, "acme", "right-password")) csv(`${row("a403")}\n`)(req, res, 0);
        else res.writeHead(403).end("forbidden");
      },
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "HTTP 403: the server refused the credentials",
        requests: 1,
      },
    },
    {
      name: "http-404",
      route: "/csv/gone",
      expected: "404: permanent, 1 request",
      serve: status(404, "not found"),
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "HTTP 404",
        requests: 1,
      },
    },
    {
      name: "500-then-ok",
      route: "/csv/flaky",
      expected: "500 is transient: retried once, then imported (2 requests)",
      serve: (req, res, hits) => {
        if (hits === 1) status(500, "boom")(req, res, hits);
        else csv(`${row("flaky-1")}\n${row("flaky-2")}\n`)(req, res, hits);
      },
      outcome: {
        status: "imported",
        ids: ["flaky-1", "flaky-2"],
        rowsRead: 2,
        rejections: [],
        requests: 2,
      },
    },
    {
      name: "url-ftp",
      route: "ftp://127.0.0.1/export.csv",
      expected: "not http(s): permanent",
      url: () => "ftp://127.0.0.1/export.csv",
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "the URL scheme ftp: is not allowed (http or https only)",
      },
    },
    {
      name: "url-file",
      route: "file:///etc/passwd",
      expected: "not http(s): permanent",
      url: () => "file:///etc/passwd",
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "the URL scheme file: is not allowed (http or https only)",
      },
    },
    {
      name: "url-javascript",
      route: "javascript:alert(1)",
      expected: "not http(s): permanent",
      url: () => "javascript:alert(1)",
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "the URL scheme javascript: is not allowed (http or https only)",
      },
    },
    {
      name: "url-embedded-credentials",
      route: "http://user:hunter2@host/csv/canary",
      expected: "refused, password never echoed",
      url: (base) => `${base.replace("http://", "http://user:hunter2@")}/csv/canary`,
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "the URL must not embed credentials",
      },
    },
    {
      name: "connection-refused",
      route: "http://127.0.0.1:<closed port>/x.csv",
      expected: "network error is transient: 3 attempts, then failed",
      url: (_base, port) => `http://127.0.0.1:${port}/x.csv`,
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: /request to 127\.0\.0\.1:\d+ failed: ECONNREFUSED/,
      },
    },
    {
      name: "link-local-address",
      route: "http://169.254.169.254/latest/meta-data/",
      expected: "cloud metadata address refused before connecting, permanent",
      url: () => "http://169.254.169.254/latest/meta-data/",
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error:
          "refused to connect to 169.254.169.254: a link-local (cloud metadata lives here) address is internal",
      },
    },
    {
      name: "private-address-hex",
      route: "http://0x0a000001/x.csv",
      expected: "10.0.0.1 written in hex refused, permanent",
      url: () => "http://0x0a000001/x.csv",
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "refused to connect to 10.0.0.1: a private (RFC 1918) address is internal",
      },
    },
    {
      name: "bad-port",
      route: "http://127.0.0.1:6000/x.csv",
      expected: "a port fetch refuses (X11): permanent, with the reason",
      url: () => "http://127.0.0.1:6000/x.csv",
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "port 6000 is refused: it belongs to another protocol",
      },
    },
    {
      name: "gzip-claimed-not-applied",
      route: "/csv/fake-gzip",
      expected: "Content-Encoding: gzip on a plain body: permanent, 1 request, clear words",
      serve: (_req, res) => {
        res.writeHead(200, { "content-type": "text/csv", "content-encoding": "gzip" });
        res.end(`${row("fg-1")}\n`);
      },
      outcome: {
        status: "failed",
        ids: [],
        rowsRead: 0,
        rejections: [],
        error: "the body is not valid gzip although the server said Content-Encoding: gzip",
        requests: 1,
      },
    },
  ];
}

export interface TranscriptOutcome {
  stage: "COMPLETED" | "FAILED";
  /** Expected messages, in order (COMPLETED only). */
  messages?: { role: string; content: string; timestamp: string | null }[];
  /** Substring of the stage's errorMessage (FAILED only). */
  error?: string | RegExp;
  /** The import after this run: PROCESSED (final) or still PENDING (transient, retried next run). */
  importStatus: "PROCESSED" | "PENDING";
  requests?: number;
}

export interface TranscriptCase {
  name: string;
  route: string;
  expected: string;
  /** The transcript URL in the CSV row; defaults to `${base}${route}`. */
  url?: (base: string) => string;
  serve?: Handler;
  outcome: TranscriptOutcome;
}

const text = (body: string | Buffer, type = "text/plain; charset=utf-8") => csv(body, type);

export function transcriptCorpus(): TranscriptCase[] {
  return [
    {
      name: "t-empty",
      route: "/t/empty",
      expected: "COMPLETED, 0 messages",
      serve: text(""),
      outcome: { stage: "COMPLETED", messages: [], importStatus: "PROCESSED", requests: 1 },
    },
    {
      name: "t-whitespace",
      route: "/t/whitespace",
      expected: "COMPLETED, 0 messages",
      serve: text("  \n\t\r\n \r\n"),
      outcome: { stage: "COMPLETED", messages: [], importStatus: "PROCESSED" },
    },
    {
      name: "t-no-roles",
      route: "/t/no-roles",
      expected: "lines kept with role unknown",
      serve: text("hello there\n  I need help with payroll  \n"),
      outcome: {
        stage: "COMPLETED",
        messages: [
          { role: "unknown", content: "hello there", timestamp: null },
          { role: "unknown", content: "I need help with payroll", timestamp: null },
        ],
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-mixed-case-roles",
      route: "/t/mixed-case",
      expected: "roles in any case normalised",
      serve: text(
        "[01.05.2025 10:00:00] USER: hi\r\n[01.05.2025 10:00:05] aSSistant: hello\r\nsYsTeM: note\r\n",
      ),
      outcome: {
        stage: "COMPLETED",
        messages: [
          { role: "user", content: "hi", timestamp: "2025-05-01T10:00:00.000Z" },
          { role: "assistant", content: "hello", timestamp: "2025-05-01T10:00:05.000Z" },
          { role: "system", content: "note", timestamp: null },
        ],
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-invalid-timestamps",
      route: "/t/bad-timestamps",
      expected: "messages kept, timestamp null",
      serve: text("[31.02.2025 10:00:00] User: hi\n[yesterday] Assistant: hello\n"),
      outcome: {
        stage: "COMPLETED",
        messages: [
          { role: "user", content: "hi", timestamp: null },
          { role: "assistant", content: "hello", timestamp: null },
        ],
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-nul-bytes",
      route: "/t/nul",
      expected: "NUL dropped everywhere (PostgreSQL text cannot hold it), COMPLETED",
      serve: text("User: he\u0000llo\n\u0000\nAssistant: fi\u0000ne\n"),
      outcome: {
        stage: "COMPLETED",
        messages: [
          { role: "user", content: "hello", timestamp: null },
          { role: "assistant", content: "fine", timestamp: null },
        ],
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-huge",
      route: "/t/huge",
      expected: "declared size over TRANSCRIPT_MAX_BYTES: FAILED, permanent",
      serve: text(`User: ${"h".repeat(10_000)}\n`),
      outcome: {
        stage: "FAILED",
        error: `the response is 10007 bytes, over the limit of ${LIMITS.TRANSCRIPT_MAX_BYTES}`,
        importStatus: "PROCESSED",
        requests: 1,
      },
    },
    {
      name: "t-huge-chunked",
      route: "/t/huge-chunked",
      expected: "undeclared size cut at TRANSCRIPT_MAX_BYTES: FAILED, permanent",
      serve: chunked(`User: ${"h".repeat(10_000)}\n`, 1_000),
      outcome: {
        stage: "FAILED",
        error: `the response is larger than the limit of ${LIMITS.TRANSCRIPT_MAX_BYTES} bytes`,
        importStatus: "PROCESSED",
        requests: 1,
      },
    },
    {
      name: "t-html",
      route: "/t/html",
      expected: "HTML page instead of a transcript: FAILED, permanent",
      serve: text(
        "<!doctype html><html><body><h1>Please log in</h1></body></html>",
        "text/html; charset=utf-8",
      ),
      outcome: {
        stage: "FAILED",
        error: "HTML page",
        importStatus: "PROCESSED",
        requests: 1,
      },
    },
    {
      name: "t-404",
      route: "/t/gone",
      expected: "FAILED, permanent, 1 request",
      serve: status(404, "not found"),
      outcome: { stage: "FAILED", error: "HTTP 404", importStatus: "PROCESSED", requests: 1 },
    },
    {
      name: "t-401",
      route: "/t/denied",
      expected: "FAILED, permanent, 1 request",
      serve: status(401, "no"),
      outcome: {
        stage: "FAILED",
        error: "HTTP 401: the server refused the credentials",
        importStatus: "PROCESSED",
        requests: 1,
      },
    },
    {
      name: "t-500-then-ok",
      route: "/t/flaky",
      expected: "retried within the run, COMPLETED (2 requests)",
      serve: (req, res, hits) => {
        if (hits === 1) status(500, "boom")(req, res, hits);
        else text("User: finally\n")(req, res, hits);
      },
      outcome: {
        stage: "COMPLETED",
        messages: [{ role: "user", content: "finally", timestamp: null }],
        importStatus: "PROCESSED",
        requests: 2,
      },
    },
    {
      name: "t-slow",
      route: "/t/slow",
      expected: "timeout, 3 attempts; stage FAILED, import PENDING for the next run",
      serve: trickle("User: s l o w\n"),
      outcome: {
        stage: "FAILED",
        error: `timed out after ${LIMITS.TRANSCRIPT_FETCH_TIMEOUT} ms`,
        importStatus: "PENDING",
        requests: 3,
      },
    },
    {
      name: "t-latin-1",
      route: "/t/latin1",
      expected: "read as UTF-8: invalid bytes become U+FFFD",
      serve: text(Buffer.from("User: Grüße\n", "latin1"), "text/plain"),
      outcome: {
        stage: "COMPLETED",
        messages: [{ role: "user", content: "Gr\uFFFD\uFFFDe", timestamp: null }],
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-br-claimed-not-applied",
      route: "/t/fake-br",
      expected: "Content-Encoding: br on a plain body: FAILED, permanent, 1 request",
      serve: (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain", "content-encoding": "br" });
        res.end("[01.05.2025 10:00:00] User: plain text, not brotli\n");
      },
      outcome: {
        stage: "FAILED",
        error: "the body is not valid brotli although the server said Content-Encoding: br",
        importStatus: "PROCESSED",
        requests: 1,
      },
    },
    {
      name: "t-link-local-hex",
      route: "/t/link-local-hex",
      expected: "a transcript URL at 169.254.169.254 written in hex: refused, permanent",
      // The tests open 127.0.0.0/8 for their own servers, so the refused address here is the
      // metadata one (fetch-safety covers every spelling of 127.0.0.1).
      url: () => "http://0xa9fea9fe/t.txt",
      outcome: {
        stage: "FAILED",
        error: "refused to connect to 169.254.169.254: a link-local",
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-60k-url",
      route: "/t/long-url",
      expected: "a 60,000-character transcript URL: its error is cut to 500 characters",
      url: (base) => `${base}/t/${"p".repeat(60_000)}`,
      outcome: {
        stage: "FAILED",
        error: /^http:\/\/127\.0\.0\.1:\d+\/t\/p+… \(\d+ more characters cut\): HTTP 4\d\d/,
        importStatus: "PROCESSED",
      },
    },
    {
      name: "t-not-http",
      route: "ftp://127.0.0.1/t.txt",
      expected: "FAILED, permanent",
      url: () => "ftp://127.0.0.1/t.txt",
      outcome: {
        stage: "FAILED",
        error: "the URL scheme ftp: is not allowed (http or https only)",
        importStatus: "PROCESSED",
      },
    },
  ];
}

/** The canary's transcript: a normal two-message chat. */
export const CANARY_TRANSCRIPT =
  "[01.05.2025 10:00:00] User: Hello\n[01.05.2025 10:00:05] Assistant: Hi, how can I help?\n";
