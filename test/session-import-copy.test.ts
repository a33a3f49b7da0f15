import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionImportWriter } from "../activities/session-import-insert.ts";
import { type Database, pgPoolOf } from "../adapters/db/client.ts";
import type { SessionImportRow } from "../domain/csv-rows.ts";
import { testDatabase } from "./support/harness.ts";

/**
 * The chunk writer puts each value into COPY's text format byte by byte; what a CSV may hold
 * (backslashes, tabs, line breaks, non-ASCII, NULLs, numbers) must come out of PostgreSQL as it
 * went in.
 */
const TRICKY = [
  "back\\slash \\N \\t",
  "tab\there",
  "line\nbreak and\r\nCRLF and lone\rCR",
  "ünïcödé — 日本語 💬",
  "\\",
];

function row(id: string, line: number, text: string | null): SessionImportRow {
  return {
    externalSessionId: id,
    startTimeRaw: "30.04.2025 11:41:48",
    endTimeRaw: "30.04.2025 11:45:02",
    ipAddress: null,
    countryCode: "NL",
    language: text,
    messagesSent: 7,
    sentimentRaw: null,
    escalatedRaw: "no",
    forwardedHrRaw: null,
    fullTranscriptUrl: null,
    avgResponseTimeSeconds: 3.977,
    tokens: 0,
    tokensEur: 0.001,
    category: text,
    initialMessage: text,
    sourceLine: line,
  };
}

describe("COPY text of import rows", () => {
  let db: Database;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    ({ db, drop } = await testDatabase());
  });

  afterAll(async () => {
    await drop?.();
  });

  it("stores every value exactly, escapes and NULLs included, and counts repeats as duplicates", async () => {
    const company = await db.company.create({
      data: { name: "Copy", csvUrl: "https://example.test/c.csv" },
    });
    const writer = new SessionImportWriter(pgPoolOf(db), company.id);
    const rows = [...TRICKY.map((text, i) => row(`t-${i}`, i + 1, text)), row("n", 9, null)];
    for (const r of rows) writer.add(r);
    // A repeat of an id already written is skipped by the unique key.
    writer.add(row("t-0", 10, "other"));
    const commits: [number, number][] = [];
    await writer.flush((inserted, total) => commits.push([inserted, total]));
    await writer.settled();
    expect(commits).toEqual([[rows.length, rows.length + 1]]);

    const stored = await db.sessionImport.findMany({
      where: { companyId: company.id },
      orderBy: { sourceLine: "asc" },
    });
    expect(
      stored.map((s) => [s.externalSessionId, s.initialMessage, s.category, s.language]),
    ).toEqual(rows.map((r) => [r.externalSessionId, r.initialMessage, r.category, r.language]));
    expect(stored[0]).toMatchObject({
      messagesSent: 7,
      avgResponseTimeSeconds: 3.977,
      tokens: 0,
      tokensEur: 0.001,
      ipAddress: null,
      escalatedRaw: "no",
      sourceLine: 1,
    });
  });
});
