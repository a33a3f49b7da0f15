import type { Client } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../adapters/db/client.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  basicAuthOk,
  historyText,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerAndWait,
} from "./support/harness.ts";

const PASSWORD = "s3cret-Pa55";

const ACME_CSV = [
  "acme-1,30.04.2025 11:41:48,30.04.2025 11:45:02,31.176.221.57,BA,english,1,happy,no,no,https://example.test/t/acme-1.txt,3.977,6537,0.0010,Greeting,Good day",
  'acme-2,30.04.2025 12:00:00,30.04.2025 12:10:00,10.0.0.2,NL,Dutch,4,neutral,yes,no,,1.5,120,0.0002,Payroll,"Hi, my salary"',
  "acme-bad,30.04.2025 12:00:00,30.04.2025 12:10:00,10.0.0.3,NL,Dutch,lots,neutral,no,no",
  "",
  "acme-3,01.05.2025 08:00:00,01.05.2025 08:01:00",
].join("\r\n");

const GLOBEX_CSV =
  "globex-1,02.05.2025 09:00:00,02.05.2025 09:05:00\nglobex-2,02.05.2025 10:00:00,02.05.2025 10:05:00\nglobex-1,02.05.2025 09:00:00,02.05.2025 09:05:00\n";

describe("csv-import scheduler end to end", () => {
  let stack: TestStack;
  let db: Database;
  let client: Client;
  let source: TestHttpServer;
  let scheduleId: string;

  beforeAll(async () => {
    source = await startHttpServer((req, res) => {
      if (req.url === "/acme.csv") {
        if (!basicAuthOk(req, "acme", PASSWORD)) {
          res.writeHead(401, { "www-authenticate": "Basic" }).end("unauthorised");
          return;
        }
        res.writeHead(200, { "content-type": "text/csv" }).end(ACME_CSV);
      } else if (req.url === "/globex.csv") {
        res.writeHead(200, { "content-type": "text/csv" }).end(GLOBEX_CSV);
      } else {
        res.writeHead(404).end("not found");
      }
    });
    // Page size 2 with three active companies exercises paging; two fetches at once.
    stack = await startTestStack({
      env: {
        CSV_IMPORT_BATCH_SIZE: "2",
        CSV_IMPORT_MAX_CONCURRENT: "2",
        CSV_IMPORT_TIMEOUT: "15000",
      },
    });
    ({ db, client } = stack);
    scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    await db.company.createMany({
      data: [
        {
          name: "Acme",
          csvUrl: `${source.url}/acme.csv`,
          csvUsername: "acme",
          csvPassword: PASSWORD,
        },
        { name: "Globex", csvUrl: `${source.url}/globex.csv` },
        { name: "Broken Ltd", csvUrl: `${source.url}/gone.csv` },
        { name: "Sleepy Inc", status: "SUSPENDED", csvUrl: `${source.url}/sleepy.csv` },
      ],
    });
    await stack.startWorkers(["csv-import"]);
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("imports every active company through the schedule, isolating the failing one", async () => {
    const { workflowId, result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(
      client,
      scheduleId,
    );

    expect(workflowId.startsWith(`${scheduleId}-`)).toBe(true);
    expect(result.outcome).toBe("PARTIAL");
    expect(result.counts).toMatchObject({
      companies: 3,
      imported: 2,
      failed: 1,
      skipped: 0,
      rowsRead: 7,
      inserted: 5,
      duplicates: 1,
      rejected: 1,
    });
    const byName = Object.fromEntries(result.counts.perCompany.map((c) => [c.companyName, c]));
    expect(byName.Acme).toMatchObject({
      status: "imported",
      rowsRead: 4,
      inserted: 3,
      rejected: 1,
      rejections: [
        { line: 3, reason: 'column 7 messages_sent: expected a whole number, got "lots"' },
      ],
    });
    expect(byName.Globex).toMatchObject({
      status: "imported",
      rowsRead: 3,
      inserted: 2,
      duplicates: 1,
    });
    expect(byName["Broken Ltd"]).toMatchObject({ status: "failed", inserted: 0 });
    expect(byName["Broken Ltd"]?.error).toContain("HTTP 404");
    expect(byName["Sleepy Inc"]).toBeUndefined();

    // The rows landed with their raw values; the Basic auth header went to Acme only.
    const imports = await db.sessionImport.findMany({
      orderBy: { externalSessionId: "asc" },
      include: { company: true },
    });
    expect(imports.map((i) => i.externalSessionId)).toEqual([
      "acme-1",
      "acme-2",
      "acme-3",
      "globex-1",
      "globex-2",
    ]);
    expect(imports[1]).toMatchObject({
      startTimeRaw: "30.04.2025 12:00:00",
      language: "Dutch",
      messagesSent: 4,
      escalatedRaw: "yes",
      fullTranscriptUrl: null,
      initialMessage: "Hi, my salary",
      status: "PENDING",
      sourceLine: 2,
    });
    const acmeRequests = source.requests.filter((r) => r.url === "/acme.csv");
    expect(acmeRequests[0]?.authorization).toBe(
      `Basic ${Buffer.from(`acme:${PASSWORD}`).toString("base64")}`,
    );
    expect(
      source.requests.filter((r) => r.url === "/globex.csv").every((r) => !r.authorization),
    ).toBe(true);
    expect(source.requests.some((r) => r.url === "/sleepy.csv")).toBe(false);

    // The run table has the outcome, the counts and the failing company's error.
    const runs = await db.schedulerRun.findMany({ where: { workflowId } });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ schedulerId: "csv-import", scheduleId, outcome: "PARTIAL" });
    expect(runs[0]?.finishedAt).toBeInstanceOf(Date);
    expect(runs[0]?.error).toContain("Broken Ltd");
    expect(runs[0]?.counts).toMatchObject({ inserted: 5, rejected: 1, failed: 1 });

    // Credentials never enter Temporal: the whole history of the run is free of them.
    const text = await historyText(client, workflowId);
    expect(text).toContain("Acme");
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(Buffer.from(`acme:${PASSWORD}`).toString("base64"));
  });

  it("importing the same files again adds nothing and counts duplicates", async () => {
    const { result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(client, scheduleId);
    expect(result.counts).toMatchObject({ inserted: 0, duplicates: 6, rejected: 1, failed: 1 });
    expect(await db.sessionImport.count()).toBe(5);
    expect(await db.schedulerRun.count({ where: { scheduleId } })).toBe(2);
  });

  it("a company whose credentials are refused fails alone, without retries", async () => {
    await db.company.updateMany({ where: { name: "Acme" }, data: { csvPassword: "wrong" } });
    const before = source.requests.filter((r) => r.url === "/acme.csv").length;
    const { result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(client, scheduleId);
    const acme = result.counts.perCompany.find((c) => c.companyName === "Acme");
    expect(acme).toMatchObject({ status: "failed" });
    expect(acme?.error).toContain("HTTP 401");
    expect(source.requests.filter((r) => r.url === "/acme.csv").length - before).toBe(1);
    expect(result.counts.perCompany.find((c) => c.companyName === "Globex")?.status).toBe(
      "imported",
    );
  });
});
