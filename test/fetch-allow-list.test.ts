import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../adapters/config.ts";
import { hostAllowed } from "../adapters/source-url.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { ImportProcessingCounts } from "../workflows/import-processing.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import { CANARY_TRANSCRIPT, row } from "./support/bad-input-corpus.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";

/**
 * FETCH_ALLOWED_HOSTS against real local servers. Every server listens on 127.0.0.1, so
 * `localhost:<port>` (on the list) and `127.0.0.1:<port>` (not on it) are the same server under
 * two host names: a refusal is the allow-list's doing, never a network error.
 */

describe("FETCH_ALLOWED_HOSTS matching", () => {
  const rules = loadConfig({
    FETCH_ALLOWED_HOSTS: "exports.example.com,*.cdn.example.com,files.example.com:8443",
  }).fetchAllowedHosts;
  const allowed = (url: string) => hostAllowed(new URL(url), rules);

  it("matches names, subdomains (not the apex) and ports, including default ports", () => {
    expect(allowed("https://exports.example.com/a.csv")).toBe(true);
    expect(allowed("http://EXPORTS.example.com.:8080/a.csv")).toBe(true);
    expect(allowed("https://eu.cdn.example.com/t/1.txt")).toBe(true);
    expect(allowed("https://a.b.cdn.example.com/t/1.txt")).toBe(true);
    expect(allowed("https://cdn.example.com/t/1.txt")).toBe(false);
    expect(allowed("https://evilcdn.example.com/t/1.txt")).toBe(false);
    expect(allowed("https://files.example.com:8443/a.csv")).toBe(true);
    expect(allowed("https://files.example.com/a.csv")).toBe(false);
    expect(allowed("https://exports.example.com.evil.test/a.csv")).toBe(false);
    expect(allowed("http://127.0.0.1/a.csv")).toBe(false);
    // An empty list allows any host.
    expect(hostAllowed(new URL("http://evil.test/"), [])).toBe(true);
    // Default ports and IPv4 spellings are compared as fetch sees them.
    const byPort = loadConfig({ FETCH_ALLOWED_HOSTS: "a.test:443,127.0.0.1" }).fetchAllowedHosts;
    expect(hostAllowed(new URL("https://a.test/"), byPort)).toBe(true);
    expect(hostAllowed(new URL("http://a.test/"), byPort)).toBe(false);
    expect(hostAllowed(new URL("http://2130706433:3000/"), byPort)).toBe(true);
  });
});

describe("FETCH_ALLOWED_HOSTS end to end", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let allowedBase: string;
  let refusedBase: string;
  let refusedHost: string;
  const requestsTo = (path: string) => source.requests.filter((r) => r.url === path).length;

  beforeAll(async () => {
    source = await startHttpServer((req, res) => {
      const csv = (body: string) =>
        res.writeHead(200, { "content-type": "text/csv" }).end(`${body}\n`);
      switch (req.url) {
        // A redirect that stays on an allowed host is followed as before.
        case "/allowed.csv":
          res.writeHead(302, { location: `${allowedBase}/allowed-data.csv` }).end();
          return;
        case "/allowed-data.csv":
          csv(
            [
              row("t-ok", `${allowedBase}/t/ok.txt`),
              row("t-refused", `${refusedBase}/t/refused.txt`),
              row("t-redirect", `${allowedBase}/t/redirect.txt`),
            ].join("\n"),
          );
          return;
        case "/refused.csv":
        case "/target.csv":
          csv(row("never-imported"));
          return;
        case "/redirect.csv":
          res.writeHead(302, { location: `${refusedBase}/target.csv` }).end();
          return;
        case "/t/ok.txt":
        case "/t/refused.txt":
        case "/t/target.txt":
          res.writeHead(200, { "content-type": "text/plain" }).end(CANARY_TRANSCRIPT);
          return;
        case "/t/redirect.txt":
          res.writeHead(302, { location: `${refusedBase}/t/target.txt` }).end();
          return;
        default:
          res.writeHead(404).end("not found");
      }
    });
    const port = new URL(source.url).port;
    allowedBase = `http://localhost:${port}`;
    refusedBase = `http://127.0.0.1:${port}`;
    refusedHost = `127.0.0.1:${port}`;

    stack = await startTestStack({
      env: {
        FETCH_ALLOWED_HOSTS: `localhost:${port},*.example.test`,
        CSV_IMPORT_TIMEOUT: "10000",
        TRANSCRIPT_FETCH_TIMEOUT: "5000",
      },
    });
    await stack.db.company.createMany({
      data: [
        { name: "Allowed", csvUrl: `${allowedBase}/allowed.csv` },
        { name: "Refused", csvUrl: `${refusedBase}/refused.csv` },
        { name: "Redirected", csvUrl: `${allowedBase}/redirect.csv` },
      ],
    });
    await stack.startWorkers(["csv-import", "import-processing"]);
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("csv-import: the allowed host imports; a host off the list or a redirect to one fails alone", async () => {
    const { result, workflowId } = await stack.run<RunSummary<CsvImportRunCounts>>("csv-import");
    const byName = Object.fromEntries(result.counts.perCompany.map((c) => [c.companyName, c]));

    expect(result.outcome).toBe("PARTIAL");
    expect(result.counts).toMatchObject({ companies: 3, imported: 1, failed: 2, inserted: 3 });
    expect(byName.Allowed).toMatchObject({ status: "imported", inserted: 3 });
    expect(byName.Refused).toMatchObject({ status: "failed", inserted: 0 });
    expect(byName.Refused?.error).toBe(
      `${refusedBase}/refused.csv: host "${refusedHost}" is not in FETCH_ALLOWED_HOSTS`,
    );
    expect(byName.Redirected).toMatchObject({ status: "failed", inserted: 0 });
    expect(byName.Redirected?.error).toBe(
      `${allowedBase}/redirect.csv: redirect refused: host "${refusedHost}" is not in FETCH_ALLOWED_HOSTS`,
    );

    // Refused before any request: the host off the list was never contacted, and a refusal is
    // permanent (the redirecting endpoint was asked once, not retried).
    expect(requestsTo("/refused.csv")).toBe(0);
    expect(requestsTo("/target.csv")).toBe(0);
    expect(requestsTo("/redirect.csv")).toBe(1);
    expect(requestsTo("/allowed.csv")).toBe(1);
    expect(requestsTo("/allowed-data.csv")).toBe(1);

    // The run record carries each refused company's reason.
    const run = await stack.db.schedulerRun.findFirst({ where: { workflowId } });
    expect(run?.outcome).toBe("PARTIAL");
    expect(run?.error).toContain(`Refused: ${refusedBase}/refused.csv: host "${refusedHost}"`);
    expect(run?.error).toContain("Redirected: ");
    const ids = await stack.db.sessionImport.findMany({ select: { externalSessionId: true } });
    expect(ids.map((i) => i.externalSessionId).sort()).toEqual(["t-ok", "t-redirect", "t-refused"]);
  });

  it("import-processing: a transcript off the list, or redirected off it, fails permanently", async () => {
    const { result } = await stack.run<RunSummary<ImportProcessingCounts>>("import-processing");
    expect(result.counts).toMatchObject({
      considered: 3,
      processed: 3,
      transcriptsFetched: 1,
      transcriptsFailed: 2,
      messages: 2,
    });

    const imports = await stack.db.sessionImport.findMany({
      include: {
        session: {
          include: { processingStatuses: { where: { stage: "TRANSCRIPT_FETCH" } }, messages: true },
        },
      },
    });
    const view = Object.fromEntries(
      imports.map((i) => [
        i.externalSessionId,
        {
          importStatus: i.status,
          attempts: i.attempts,
          stage: i.session?.processingStatuses[0]?.status,
          retryCount: i.session?.processingStatuses[0]?.retryCount,
          error: i.session?.processingStatuses[0]?.errorMessage ?? null,
          messages: i.session?.messages.length,
        },
      ]),
    );
    expect(view["t-ok"]).toEqual({
      importStatus: "PROCESSED",
      attempts: 0,
      stage: "COMPLETED",
      retryCount: 0,
      error: null,
      messages: 2,
    });
    // Permanent, like a 404: the import is final after one attempt, never tried by later runs.
    expect(view["t-refused"]).toEqual({
      importStatus: "PROCESSED",
      attempts: 1,
      stage: "FAILED",
      retryCount: 1,
      error: `${refusedBase}/t/refused.txt: host "${refusedHost}" is not in FETCH_ALLOWED_HOSTS`,
      messages: 0,
    });
    expect(view["t-redirect"]).toEqual({
      importStatus: "PROCESSED",
      attempts: 1,
      stage: "FAILED",
      retryCount: 1,
      error: `${allowedBase}/t/redirect.txt: redirect refused: host "${refusedHost}" is not in FETCH_ALLOWED_HOSTS`,
      messages: 0,
    });
    expect(requestsTo("/t/ok.txt")).toBe(1);
    expect(requestsTo("/t/refused.txt")).toBe(0);
    expect(requestsTo("/t/redirect.txt")).toBe(1);
    expect(requestsTo("/t/target.txt")).toBe(0);

    // Nothing left for a later run to try again.
    const again = await stack.run<RunSummary<ImportProcessingCounts>>("import-processing");
    expect(again.result.counts.considered).toBe(0);
    expect(requestsTo("/t/redirect.txt")).toBe(1);
  });
});
