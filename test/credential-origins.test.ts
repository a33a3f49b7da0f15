import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialsForUrl } from "../adapters/credential-scope.ts";
import type { ImportProcessingCounts } from "../workflows/import-processing.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import { CANARY_TRANSCRIPT, row } from "./support/bad-input-corpus.ts";
import {
  basicAuthOk,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";

/**
 * A company's Basic auth credentials go to its CSV's origin and to origins an operator listed
 * for it (Company.credentialOrigins), never to a host because a transcript URL in the CSV names it.
 */

const USER = "origin-user";
const PASS = "origin-pass-5s8d";

describe("credentialsForUrl", () => {
  const company = {
    csvUrl: "https://exports.example.com/sessions.csv",
    csvUsername: USER,
    csvPassword: PASS,
    credentialOrigins: ["https://transcripts.example.com:8443", "not a url"],
  };
  const creds = { username: USER, password: PASS };

  it("the CSV's origin (any path, default port spelled or not) gets them", () => {
    expect(credentialsForUrl("https://exports.example.com/t/1.txt", company)).toEqual(creds);
    expect(credentialsForUrl("https://EXPORTS.example.com:443/t/1.txt?x=1", company)).toEqual(
      creds,
    );
  });

  it("an origin the operator listed gets them; anything else (scheme, port, host) does not", () => {
    expect(credentialsForUrl("https://transcripts.example.com:8443/t/1.txt", company)).toEqual(
      creds,
    );
    for (const url of [
      "http://exports.example.com/t/1.txt",
      "https://exports.example.com:8443/t/1.txt",
      "https://transcripts.example.com/t/1.txt",
      "https://exports.example.com.evil.test/t/1.txt",
      "https://evil.test/?u=https://exports.example.com/",
      "data:text/plain,x",
      "not a url",
    ]) {
      expect(credentialsForUrl(url, company), url).toBeUndefined();
    }
  });

  it("no credentials configured: none sent anywhere", () => {
    expect(
      credentialsForUrl(company.csvUrl, { ...company, csvUsername: USER, csvPassword: null }),
    ).toBeUndefined();
    expect(credentialsForUrl(company.csvUrl, { ...company, credentialOrigins: null })).toEqual(
      creds,
    );
  });
});

describe("transcript fetches send credentials only to the CSV's origin or a listed one", () => {
  let stack: TestStack;
  let csvServer: TestHttpServer;
  let otherServer: TestHttpServer;
  let listedServer: TestHttpServer;

  beforeAll(async () => {
    const transcript = (
      req: Parameters<Parameters<typeof startHttpServer>[0]>[0],
      res: Parameters<Parameters<typeof startHttpServer>[0]>[1],
    ) => {
      // Each server answers with or without credentials: what it received is what is checked.
      res.writeHead(200, { "content-type": "text/plain" }).end(CANARY_TRANSCRIPT);
      void req;
    };
    otherServer = await startHttpServer(transcript);
    listedServer = await startHttpServer(transcript);
    csvServer = await startHttpServer((req, res) => {
      if (req.url === "/sessions.csv") {
        if (!basicAuthOk(req, USER, PASS)) {
          res.writeHead(401).end();
          return;
        }
        const csv = [
          row("same-origin", `${csvServer.url}/t/same.txt`),
          row("other-origin", `${otherServer.url}/t/other.txt`),
          row("listed-origin", `${listedServer.url}/t/listed.txt`),
        ].join("\n");
        res.writeHead(200, { "content-type": "text/csv" }).end(`${csv}\n`);
        return;
      }
      transcript(req, res);
    });
    stack = await startTestStack({ workerTypes: ["csv-import", "import-processing"] });
    await stack.db.company.create({
      data: {
        name: "Origins",
        csvUrl: `${csvServer.url}/sessions.csv`,
        csvUsername: USER,
        csvPassword: PASS,
        credentialOrigins: [listedServer.url],
      },
    });
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([csvServer?.close(), otherServer?.close(), listedServer?.close()]);
  });

  it("the CSV's origin and the listed origin get them; another port of the same host does not", async () => {
    await stack.run("csv-import");
    const { result } = await stack.run<RunSummary<ImportProcessingCounts>>("import-processing");
    expect(result.counts).toMatchObject({ processed: 3, transcriptsFetched: 3 });

    const basic = `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`;
    const auth = (server: TestHttpServer, path: string) =>
      server.requests.filter((r) => r.url === path).map((r) => r.authorization);
    expect(auth(csvServer, "/sessions.csv")).toEqual([basic]);
    expect(auth(csvServer, "/t/same.txt")).toEqual([basic]);
    expect(auth(listedServer, "/t/listed.txt")).toEqual([basic]);
    // Same host (127.0.0.1), another port: another origin, so no credentials.
    expect(auth(otherServer, "/t/other.txt")).toEqual([undefined]);
  });
});
