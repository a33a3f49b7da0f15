import type { Client } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CompanyImportResult } from "../activities/csv-import.ts";
import { STAGING_TABLE } from "../activities/session-import-insert.ts";
import type { Database } from "../adapters/db/client.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerAndWait,
} from "./support/harness.ts";

/**
 * The import's insert path over several chunks (10,000 rows each): COPY into a staging table,
 * then INSERT ... ON CONFLICT DO NOTHING. 25,000 lines; lines 15,000, 20,000 and 25,000 repeat
 * an id from 9,000 lines earlier (another chunk) with the same data; line 20,001 repeats line
 * 3's id with different data. The first request is cut after 15,000 lines.
 */
const LINES = 25_000;
const CUT_AFTER = 15_000;
const REPEATS = [15_000, 20_000, 25_000];
const CONFLICT_LINE = 20_001;

function line(n: number): string {
  const row = (id: string, message: string) =>
    `${id},01.05.2025 08:00:00,01.05.2025 08:05:00,10.0.0.1,NL,english,3,happy,no,no,https://t.test/${id}.txt,2.5,100,0.0010,Greeting,${message}`;
  if (REPEATS.includes(n)) return row(`s-${n - 9_000}`, "Hello there");
  if (n === CONFLICT_LINE) return row("s-3", "Something else");
  return row(`s-${n}`, "Hello there");
}

const body = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${line(from + i)}\n`).join("");

describe("csv-import through the staging table", () => {
  let stack: TestStack;
  let db: Database;
  let client: Client;
  let source: TestHttpServer;
  let scheduleId: string;
  let requests = 0;

  const stagingTables = async () =>
    (
      await db.$queryRawUnsafe<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM pg_class WHERE relname = '${STAGING_TABLE}'`,
      )
    )[0]?.n;

  beforeAll(async () => {
    source = await startHttpServer((_req, res) => {
      requests += 1;
      res.writeHead(200, { "content-type": "text/csv" });
      if (requests === 1) {
        // The first attempt's connection breaks mid-file (a transient failure: retried).
        res.write(body(1, CUT_AFTER), () => res.destroy());
        return;
      }
      res.end(body(1, LINES));
    });
    stack = await startTestStack({ env: { CSV_IMPORT_TIMEOUT: "60000" } });
    ({ db, client } = stack);
    scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    await db.company.create({ data: { name: "Chunked", csvUrl: `${source.url}/big.csv` } });
    await stack.startWorkers(["csv-import"]);
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("a retried attempt keeps what the first committed and adds the rest once; repeats across chunks are duplicates, the conflict is rejected", async () => {
    const { result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(client, scheduleId, {
      timeoutMs: 120_000,
    });
    expect(requests).toBe(2);
    const distinct = LINES - REPEATS.length - 1;
    // Exactly once: one row per distinct id, none twice, none missing.
    expect(await db.sessionImport.count()).toBe(distinct);
    const [company] = result.counts.perCompany as [CompanyImportResult];
    expect(company).toMatchObject({ status: "imported", rowsRead: LINES, rejected: 1 });
    expect(company.rejections).toEqual([
      {
        line: CONFLICT_LINE,
        reason:
          'conflict: session_id "s-3" appeared on line 3 with different data; the first row is kept',
      },
    ]);
    // Rows the first attempt committed after its last heartbeat reached the server are read
    // again by the retry and counted as duplicates; every line is counted once.
    expect(company.inserted + company.duplicates).toBe(LINES - 1);
    expect(company.duplicates).toBeGreaterThanOrEqual(REPEATS.length);
    expect(company.inserted).toBeGreaterThanOrEqual(distinct - CUT_AFTER);
    // The stored row of a repeated id is its first line's.
    const first = await db.sessionImport.findFirst({ where: { externalSessionId: "s-6000" } });
    expect(first?.sourceLine).toBe(6_000);
    expect(await stagingTables()).toBe(0);
  }, 150_000);

  it("the same file again inserts nothing: every row a counted duplicate", async () => {
    const { result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(client, scheduleId);
    expect(result.counts).toMatchObject({
      rowsRead: LINES,
      inserted: 0,
      duplicates: LINES - 1,
      rejected: 1,
    });
    expect(await db.sessionImport.count()).toBe(LINES - REPEATS.length - 1);
    expect(await stagingTables()).toBe(0);
  });
});
