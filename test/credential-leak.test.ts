import type { ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redactUrlCredentials } from "../adapters/source-url.ts";
import { freePort } from "../scripts/services/ports.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { ImportProcessingCounts } from "../workflows/import-processing.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import { CANARY_TRANSCRIPT, row } from "./support/bad-input-corpus.ts";
import {
  basicAuthOk,
  historyText,
  payloadText,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";
import { spawnApiProcess, spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";

/**
 * A company's CSV credentials must never show up anywhere but the Company row and the wire to
 * that company's server. The pipeline runs in real worker and API processes, through success and
 * failure (401, 500, connection refused, credentials embedded in a URL or a redirect), and then
 * every log line, API response, stored error, metrics text and Temporal payload is searched for
 * the credentials and their Basic auth form.
 */

const USER = "leak-user-7f3a";
const PASS = "leak-pass-Q9zX";
const BASIC = Buffer.from(`${USER}:${PASS}`).toString("base64");
const ADMIN_TOKEN = "leak-admin-token-R2d2C3po";
const SECRETS: Record<string, string> = {
  username: USER,
  password: PASS,
  "Basic auth token": BASIC,
  "admin token": ADMIN_TOKEN,
};

/** Each secret found in text, with some context so a failure points at the leak. */
function leaks(where: string, text: string): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(SECRETS)) {
    const at = text.indexOf(secret);
    if (at >= 0) found.push(`${where}: ${name} in …${text.slice(Math.max(0, at - 160), at + 60)}…`);
  }
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("credentials never leak", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let worker: WorkerProcess;
  let api: Awaited<ReturnType<typeof spawnApiProcess>>;
  let workerMetricsPort: number;
  let refusedPort: number;
  const workflowIds = new Set<string>();
  /** describe() of every running workflow, polled during the runs (pending activities). */
  const describeSnapshots: string[] = [];
  const requestsTo = (path: string) => source.requests.filter((r) => r.url === path);

  beforeAll(async () => {
    const unauthorised = (res: ServerResponse): void => {
      res.writeHead(401, { "www-authenticate": 'Basic realm="exports"' }).end("unauthorised");
    };
    source = await startHttpServer(async (req, res) => {
      const port = new URL(source.url).port;
      const authorised = basicAuthOk(req, USER, PASS);
      switch (req.url) {
        case "/good.csv": {
          if (!authorised) return unauthorised(res);
          res.writeHead(200, { "content-type": "text/csv" });
          res.write(
            `${[
              row("good-1", `${source.url}/t/good-1.txt`),
              row("good-500", `${source.url}/t/500.txt`),
              row("good-refused", `http://127.0.0.1:${refusedPort}/t/gone.txt`),
              row("good-401", `${source.url}/t/401.txt`),
              row("good-redirect", `${source.url}/t/redirect.txt`),
            ].join("\n")}\n`,
          );
          // A slow end keeps the activity running, heartbeating, while the test describes it.
          await sleep(4_000);
          res.end();
          return;
        }
        case "/denied.csv":
          return unauthorised(res);
        // A server handing out a URL with credentials in it (a careless pre-signed link).
        case "/redirect-embedded.csv":
          res
            .writeHead(302, { location: `http://${USER}:${PASS}@localhost:${port}/target.csv` })
            .end();
          return;
        case "/t/good-1.txt":
        case "/t/redirect-target.txt":
          if (!authorised) return unauthorised(res);
          res.writeHead(200, { "content-type": "text/plain" }).end(CANARY_TRANSCRIPT);
          return;
        case "/t/500.txt":
          res.writeHead(500).end("internal error");
          return;
        case "/t/401.txt":
          return unauthorised(res);
        // Another origin: the credentials must not follow the redirect.
        case "/t/redirect.txt":
          res.writeHead(302, { location: `http://localhost:${port}/t/redirect-target.txt` }).end();
          return;
        default:
          res.writeHead(404).end("not found");
      }
    });
    refusedPort = await freePort();
    workerMetricsPort = await freePort();

    stack = await startTestStack({
      env: {
        ADMIN_API_TOKEN: ADMIN_TOKEN,
        // Short, so the slow CSV heartbeats (every third of it) while the test looks.
        ACTIVITY_HEARTBEAT_TIMEOUT_MS: "4000",
        CSV_IMPORT_TIMEOUT: "20000",
        TRANSCRIPT_FETCH_TIMEOUT: "5000",
      },
    });
    const withCredentials = { csvUsername: USER, csvPassword: PASS };
    await stack.db.company.createMany({
      data: [
        { name: "Good", csvUrl: `${source.url}/good.csv`, ...withCredentials },
        { name: "Denied", csvUrl: `${source.url}/denied.csv`, ...withCredentials },
        {
          name: "Unreachable",
          csvUrl: `http://127.0.0.1:${refusedPort}/export.csv`,
          ...withCredentials,
        },
        {
          name: "Embedded",
          csvUrl: `http://${USER}:${PASS}@${new URL(source.url).host}/embedded.csv`,
        },
        {
          name: "RedirectEmbedded",
          csvUrl: `${source.url}/redirect-embedded.csv`,
          ...withCredentials,
        },
      ],
    });

    // Every log line at the most verbose level, from processes started the way operators do.
    const processEnv = { ...stack.env, LOG_LEVEL: "trace" };
    [worker, api] = await Promise.all([
      spawnWorkerProcess(
        "leak-scan",
        { ...processEnv, WORKER_METRICS_PORT: String(workerMetricsPort) },
        ["--scheduler=csv-import,import-processing"],
      ),
      spawnApiProcess(processEnv),
    ]);
    await worker.waitReady(90_000);
  }, 180_000);

  afterAll(async () => {
    for (const child of [worker?.child, api?.child])
      if (child && child.exitCode === null) child.kill("SIGKILL");
    await stack?.close();
    await source?.close();
  });

  /** Runs a scheduler while describing its running workflow, to catch pending heartbeats. */
  async function runWatched<T>(schedulerId: string) {
    const schedule = stack.client.schedule.getHandle(stack.defs[schedulerId]?.scheduleId ?? "");
    let finished = false;
    const watching = (async () => {
      while (!finished) {
        const running = (await schedule.describe()).info.runningActions;
        for (const action of running) {
          const id = action.workflow.workflowId;
          workflowIds.add(id);
          const described = await stack.client.workflow.getHandle(id).describe();
          describeSnapshots.push(payloadText(described.raw));
        }
        await sleep(150);
      }
    })();
    try {
      const run = await stack.run<T>(schedulerId);
      workflowIds.add(run.workflowId);
      return run;
    } finally {
      finished = true;
      await watching;
    }
  }

  it("runs the pipeline through its error paths, sending the credentials", async () => {
    const csv = await runWatched<RunSummary<CsvImportRunCounts>>("csv-import");
    const byName = Object.fromEntries(csv.result.counts.perCompany.map((c) => [c.companyName, c]));
    expect(byName.Good).toMatchObject({ status: "imported", inserted: 5 });
    expect(byName.Denied?.error).toContain("HTTP 401");
    expect(byName.Unreachable?.error).toContain("ECONNREFUSED");
    expect(byName.Embedded?.error).toContain("the URL must not embed credentials");
    expect(byName.RedirectEmbedded?.error).toContain(
      "redirect to a URL with embedded credentials refused",
    );

    const processing = await runWatched<RunSummary<ImportProcessingCounts>>("import-processing");
    expect(processing.result.counts).toMatchObject({
      considered: 5,
      transcriptsFetched: 1,
      transcriptsFailed: 4,
    });
    const errors = processing.result.counts.errors.map((e) => e.error).join("\n");
    expect(errors).toContain("HTTP 500");
    expect(errors).toContain("ECONNREFUSED");
    expect(errors).toContain("HTTP 401");

    // The scan below means something only if the credentials really were used: every request
    // to the company's own origin carried them...
    for (const path of ["/good.csv", "/denied.csv", "/redirect-embedded.csv", "/t/good-1.txt"]) {
      expect(requestsTo(path).length, path).toBeGreaterThan(0);
      for (const r of requestsTo(path)) expect(r.authorization, path).toBe(`Basic ${BASIC}`);
    }
    expect(requestsTo("/t/401.txt")[0]?.authorization).toBe(`Basic ${BASIC}`);
    // ...and none went to another origin or to a URL that embeds them.
    expect(requestsTo("/t/redirect-target.txt").map((r) => r.authorization)).toEqual([undefined]);
    expect(requestsTo("/target.csv")).toEqual([]);
    expect(requestsTo("/embedded.csv")).toEqual([]);
    // Refused for good: no retry asks the redirecting server again.
    expect(requestsTo("/redirect-embedded.csv")).toHaveLength(1);
    // The heartbeat of the slow import was seen while it ran.
    expect(describeSnapshots.join("\n")).toContain("recordsDone");
  }, 120_000);

  it("error messages quoting a URL hide its user:password@ part", () => {
    expect(
      redactUrlCredentials(
        `Request cannot be constructed from a URL that includes credentials: http://${USER}:${PASS}@a.test:81/x.csv?q=1@2`,
      ),
    ).toBe(
      "Request cannot be constructed from a URL that includes credentials: http://***@a.test:81/x.csv?q=1@2",
    );
    expect(redactUrlCredentials("see https://a.test/p@th and HTTPS://u:p@ss@b.test")).toBe(
      "see https://a.test/p@th and HTTPS://***@b.test",
    );
  });

  it("no API response carries them", async () => {
    const paths = [
      "/livez",
      "/readyz",
      "/api/admin/schedulers/health",
      "/api/admin/schedulers",
      "/api/admin/schedulers/csv-import",
      "/api/admin/schedulers/import-processing",
      "/api/admin/schedulers/csv-import/runs",
      "/api/admin/schedulers/import-processing/runs",
      "/api/admin/schedulers/unknown",
      "/admin",
      "/api/openapi.json",
      "/metrics",
    ];
    const responses: string[] = [];
    const get = async (path: string, headers: Record<string, string>) => {
      const res = await fetch(`${api.url}${path}`, { headers });
      responses.push(
        `${path} ${res.status}\n${JSON.stringify([...res.headers])}\n${await res.text()}`,
      );
    };
    for (const path of paths) await get(path, { authorization: `Bearer ${ADMIN_TOKEN}` });
    // Refusals too: the answer to a wrong token must not reveal the right one.
    await get("/api/admin/schedulers", { authorization: "Bearer wrong-token-0123456789" });
    await get("/admin", {});

    const all = responses.join("\n\n");
    expect(all).toContain("Denied: ");
    expect(all).toContain("HTTP 500");
    expect(all).toContain("livedash_scheduler_runs_total");
    expect(responses.flatMap((r, i) => leaks(`response ${i}`, r))).toEqual([]);
  });

  it("no metrics text carries them (API and worker SDK metrics)", async () => {
    const platform = await (await fetch(`${api.url}/metrics`)).text();
    const sdk = await (await fetch(`http://127.0.0.1:${workerMetricsPort}/metrics`)).text();
    expect(platform).toContain("livedash_imports");
    expect(sdk).toContain("temporal_");
    expect([...leaks("/metrics", platform), ...leaks("worker metrics", sdk)]).toEqual([]);
  });

  it("no stored error (or any other stored value outside the company's own row) carries them", async () => {
    const tables = await stack.db.$queryRaw<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`;
    const found: string[] = [];
    let all = "";
    for (const { name } of tables) {
      // The company's own credential columns are where they belong; everything else is scanned.
      const [dump] = await stack.db.$queryRawUnsafe<{ text: string | null }[]>(
        `SELECT string_agg((to_jsonb(t) - 'csvUsername' - 'csvPassword' - 'csvUrl')::text, E'\\n') AS text FROM "${name}" t`,
      );
      const text = dump?.text ?? "";
      all += text;
      found.push(...leaks(`table ${name}`, text));
    }
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(["SchedulerRun", "SessionImport", "SessionProcessingStatus"]),
    );
    expect(all).toContain("HTTP 401: the server refused the credentials");
    expect(all).toContain("ECONNREFUSED");
    expect(all).toContain("HTTP 500");
    expect(all).toContain("the URL must not embed credentials");
    expect(found).toEqual([]);
  });

  it("no Temporal history, payload, failure or heartbeat carries them", async () => {
    for (const def of [stack.defs["csv-import"], stack.defs["import-processing"]]) {
      for await (const wf of stack.client.workflow.list({
        query: `TaskQueue = "${def?.taskQueue}"`,
      }))
        workflowIds.add(wf.workflowId);
    }
    expect(workflowIds.size).toBeGreaterThanOrEqual(2);
    const found: string[] = [];
    let all = "";
    for (const id of workflowIds) {
      const text = `${await historyText(stack.client, id)}\n${payloadText((await stack.client.workflow.getHandle(id).describe()).raw)}`;
      all += text;
      found.push(...leaks(`workflow ${id}`, text));
    }
    found.push(...leaks("describe() while running", describeSnapshots.join("\n")));
    // Company names, failures and heartbeats were there to be scanned.
    expect(all).toContain("RedirectEmbedded");
    expect(all).toContain("ECONNREFUSED");
    expect(all).toContain("HTTP 401");
    expect(found).toEqual([]);
  });

  it("no log line of the worker or the API carries them", async () => {
    // Stop both so everything they wrote, shutdown included, is in the captured output.
    worker.child.kill("SIGTERM");
    api.child.kill("SIGTERM");
    await Promise.all([worker.exited, api.exited]);
    const workerLog = worker.output();
    const apiLog = api.output();
    expect(workerLog).toContain("transcript fetch failed");
    expect(workerLog).toContain("ECONNREFUSED");
    expect(apiLog).toContain('"msg":"request"');
    expect(apiLog).toContain("/api/admin/schedulers/csv-import/runs");
    expect([...leaks("worker log", workerLog), ...leaks("API log", apiLog)]).toEqual([]);
  }, 60_000);
});
