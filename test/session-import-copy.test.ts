import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChunkOutcome, SessionImportWriter } from "../activities/session-import-insert.ts";
import { type Database, pgPoolOf } from "../adapters/db/client.ts";
import { conflictReason, type SessionImportRow } from "../domain/csv-rows.ts";
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
    // A repeat with the same values is a duplicate; one with other values a conflict.
    writer.add(row("t-1", 10, TRICKY[1] ?? ""));
    writer.add(row("t-0", 11, "other"));
    const commits: [ChunkOutcome, number][] = [];
    await writer.flush((outcome, total) => commits.push([outcome, total]));
    await writer.settled();
    expect(commits).toEqual([
      [
        { inserted: rows.length, conflicts: [{ line: 11, reason: conflictReason("t-0", 1) }] },
        rows.length + 2,
      ],
    ]);

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

  /** Writes rows in chunks of `chunk` through one writer, as one read of a file does. */
  async function write(companyId: string, rows: SessionImportRow[], chunk: number) {
    const writer = new SessionImportWriter(pgPoolOf(db), companyId);
    const outcome = { inserted: 0, duplicates: 0, conflicts: [] as ChunkOutcome["conflicts"] };
    const committed = (o: ChunkOutcome, total: number) => {
      outcome.inserted += o.inserted;
      outcome.duplicates += total - o.inserted - o.conflicts.length;
      outcome.conflicts.push(...o.conflicts);
    };
    for (const r of rows) {
      writer.add(r);
      if (writer.rows >= chunk) await writer.flush(committed);
    }
    await writer.flush(committed);
    await writer.settled();
    return outcome;
  }

  it("tells repeats within one read apart in the database: across chunks and within one", async () => {
    const company = await db.company.create({
      data: { name: "Repeats", csvUrl: "https://example.test/r.csv" },
    });
    const rows = [
      row("a", 1, "x"),
      row("b", 2, "x"),
      row("c", 3, "x"),
      // Next chunk: an identical repeat, a conflicting one, and a new id repeated inside it.
      row("a", 4, "x"),
      row("b", 5, "y"),
      row("d", 6, "x"),
      row("d", 7, "y"),
    ];
    expect(await write(company.id, rows, 3)).toEqual({
      inserted: 4,
      duplicates: 1,
      conflicts: [
        { line: 5, reason: conflictReason("b", 2) },
        { line: 7, reason: conflictReason("d", 6) },
      ],
    });
    const stored = await db.sessionImport.findMany({
      where: { companyId: company.id },
      orderBy: { sourceLine: "asc" },
      select: { externalSessionId: true, sourceLine: true, language: true },
    });
    expect(stored).toEqual([
      { externalSessionId: "a", sourceLine: 1, language: "x" },
      { externalSessionId: "b", sourceLine: 2, language: "x" },
      { externalSessionId: "c", sourceLine: 3, language: "x" },
      { externalSessionId: "d", sourceLine: 6, language: "x" },
    ]);

    // The file read again, grown: a row corrected in place (its own line) is a duplicate, the
    // conflicting repeat is found again on its stored line, and new repeats as before.
    const again = [
      row("a", 1, "corrected"),
      row("b", 2, "x"),
      row("b", 5, "y"),
      row("e", 8, "x"),
      row("e", 9, "y"),
    ];
    expect(await write(company.id, again, 10)).toEqual({
      inserted: 1,
      duplicates: 2,
      conflicts: [
        { line: 5, reason: conflictReason("b", 2) },
        { line: 9, reason: conflictReason("e", 8) },
      ],
    });
    expect(
      await db.sessionImport.findFirst({
        where: { companyId: company.id, externalSessionId: "a" },
        select: { language: true },
      }),
    ).toEqual({ language: "x" });
  });

  it("tells every id of a large file apart exactly, whatever its characters", async () => {
    const company = await db.company.create({
      data: { name: "Many", csvUrl: "https://example.test/m.csv" },
    });
    const ids = Array.from({ length: 30_000 }, (_, i) => `session-${i.toString(36)}`);
    // Look-alikes that are different ids: composed and decomposed é, case, a longer id.
    ids.push("é", "e\u0301", "E", "e", "💬", "x".repeat(255));
    const rows = ids.map((id, i) => row(id, i + 1, "first"));
    // Every 997th id again, half identical and half with other values, in later chunks.
    let line = rows.length;
    const conflicts: ChunkOutcome["conflicts"] = [];
    for (let i = 0; i < ids.length; i += 997) {
      const id = ids[i] ?? "";
      line += 1;
      const conflicting = (i / 997) % 2 === 1;
      rows.push(row(id, line, conflicting ? "second" : "first"));
      if (conflicting) conflicts.push({ line, reason: conflictReason(id, i + 1) });
    }
    const repeats = rows.length - ids.length;
    expect(await write(company.id, rows, 4_000)).toEqual({
      inserted: ids.length,
      duplicates: repeats - conflicts.length,
      conflicts,
    });
  });
});
