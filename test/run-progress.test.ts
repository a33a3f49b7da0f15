import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer } from "../api/server.ts";
import type { RunProgressView } from "../control-plane/run-progress.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerRun,
  waitFor,
} from "./support/harness.ts";

const TOKEN = "test-admin-token-progress-0123";
const COMPANIES = 6;
const ROWS = 3_000;
const CHUNK_ROWS = 200;
const CHUNK_PAUSE_MS = 250;

function csvRow(company: number, n: number): string {
  const id = `p${company}-${n}`;
  return `${id},01.05.2025 08:00:00,01.05.2025 08:05:00,10.0.0.1,NL,english,3,happy,no,no,,2.5,100,0.0010,Greeting,Hello\n`;
}

/** Serves a company's CSV a chunk at a time, so each import is observably in flight. */
async function dribble(res: ServerResponse, company: number) {
  res.writeHead(200, { "content-type": "text/csv" });
  for (let start = 1; start <= ROWS; start += CHUNK_ROWS) {
    if (res.destroyed) return;
    let chunk = "";
    for (let n = start; n < start + CHUNK_ROWS && n <= ROWS; n++) chunk += csvRow(company, n);
    res.write(chunk);
    await sleep(CHUNK_PAUSE_MS);
  }
  res.end();
}

interface RunBody {
  workflowId: string;
  outcome: string;
  finishedAt: string | null;
  counts: { companies: number; rowsRead: number; inserted: number } | null;
  progress?: RunProgressView;
}

/**
 * A running run's live progress through the real API (HTTP server, Temporal dev server,
 * PostgreSQL): a csv-import run over slow local CSV sources is polled while it runs.
 */
describe("live progress of a running run", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let api: Awaited<ReturnType<typeof startApiServer>>;

  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${api.port}${path}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return { status: response.status, text: await response.text() };
  };
  const getJson = async <T>(path: string): Promise<{ status: number; data: T }> => {
    const { status, text } = await get(path);
    return { status, data: (JSON.parse(text) as { data: T }).data };
  };

  beforeAll(async () => {
    source = await startHttpServer(async (req, res) => {
      const company = Number(/\/c(\d+)\.csv$/.exec(req.url ?? "")?.[1] ?? 0);
      await dribble(res, company);
    });
    stack = await startTestStack({
      env: {
        ADMIN_API_TOKEN: TOKEN,
        // Two companies at a time: the run has finished, running and waiting companies at once.
        CSV_IMPORT_MAX_CONCURRENT: "2",
        ACTIVITY_HEARTBEAT_TIMEOUT_MS: "3000",
        CSV_IMPORT_TIMEOUT: "120000",
      },
    });
    for (let i = 1; i <= COMPANIES; i++) {
      await stack.db.company.create({
        data: { name: `Progress Co ${i}`, csvUrl: `${source.url}/c${i}.csv` },
      });
    }
    await stack.startWorkers(["csv-import"]);
    api = await startApiServer({
      config: { ...stack.config, port: 0 },
      client: stack.client,
      db: stack.db,
      log: silentLog,
    });
  });

  afterAll(async () => {
    await api?.close();
    await stack?.close();
    await source?.close();
  });

  it("shows companies done out of total and rows read (in-flight imports included) growing while a csv-import runs; the finished run keeps its totals", async () => {
    const workflowId = await triggerRun(stack.client, stack.defs["csv-import"]?.scheduleId ?? "");
    const detailPath = `/api/admin/schedulers/csv-import/runs/${encodeURIComponent(workflowId)}`;

    const samples: RunProgressView[] = [];
    let dashboardShowed: string | undefined;
    let listShowed: RunProgressView | undefined;
    for (;;) {
      const { status, data } = await getJson<RunBody>(detailPath);
      if (status === 200 && data.finishedAt) break;
      if (status === 200 && data.progress) {
        samples.push(data.progress);
        if (!listShowed && data.progress.rowsRead && data.progress.rowsRead > 0) {
          const scheduler = await getJson<{ lastRuns: RunBody[] }>(
            "/api/admin/schedulers/csv-import",
          );
          listShowed = scheduler.data.lastRuns.find((r) => r.workflowId === workflowId)?.progress;
          const page = await get("/admin");
          const shown = /<span class="progress-summary">([^<]*)<\/span>/.exec(page.text)?.[1];
          if (shown) dashboardShowed = shown;
        }
      }
      await sleep(300);
    }

    const live = samples.filter((p) => p.source === "workflow");
    expect(live.length).toBeGreaterThan(3);
    for (const p of live) {
      // The total is counted as the run starts; from its first listing on, it is known.
      if ((p.items?.taken ?? 0) > 0) expect(p.companies?.total).toBe(COMPANIES);
      expect(p.companies?.done).toBeLessThanOrEqual(COMPANIES);
      expect(Date.parse(p.updatedAt)).not.toBeNaN();
      expect(p.items?.inFlight).toBeLessThanOrEqual(COMPANIES);
    }
    const rows = live.map((p) => p.rowsRead ?? 0);
    expect(Math.max(...rows)).toBeGreaterThan(0);
    // Growing while it runs (never going back), and more than one distinct value along the way.
    for (let i = 1; i < rows.length; i++) expect(rows[i]).toBeGreaterThanOrEqual(rows[i - 1] ?? 0);
    expect(new Set(rows).size).toBeGreaterThan(2);
    // Rows of companies still in flight count: read from their heartbeats, beyond the totals of
    // the finished companies.
    const inFlightCounted = live.find(
      (p) =>
        p.inFlight.activities.some(
          (a) => a.activityType === "importCompanyCsv" && (a.rowsRead ?? 0) > 0,
        ) && (p.rowsRead ?? 0) > ((p.counts as { rowsRead?: number } | null)?.rowsRead ?? 0),
    );
    expect(inFlightCounted).toBeDefined();
    // Part-way samples: some companies done, fewer than all, rows read.
    const partWay = live.filter(
      (p) => (p.companies?.done ?? 0) > 0 && (p.companies?.done ?? 0) < COMPANIES,
    );
    expect(partWay.length).toBeGreaterThan(0);
    expect(partWay.every((p) => (p.rowsRead ?? 0) > 0)).toBe(true);
    // Before the first company finished, rows already read (only from in-flight heartbeats).
    expect(live.some((p) => p.companies?.done === 0 && (p.rowsRead ?? 0) > 0)).toBe(true);

    // The scheduler view (what the dashboard renders) carries it, and the dashboard shows it.
    expect(listShowed?.companies?.total).toBe(COMPANIES);
    expect(dashboardShowed).toMatch(
      new RegExp(`^\\d+ of ${COMPANIES} companies · [\\d,]+ rows read · \\d+ in flight$`),
    );

    process.stdout.write(
      `PROGRESS-FIGURES samples=${live.length} rowsRead=${rows.join(",")} dashboard="${dashboardShowed}"\n`,
    );

    // Finished: the run keeps its totals and shows no progress.
    const done = await waitFor("the run record to be finished", async () => {
      const { data } = await getJson<RunBody>(detailPath);
      return data.finishedAt ? data : undefined;
    });
    expect(done.outcome).toBe("SUCCEEDED");
    expect(done.progress).toBeUndefined();
    expect(done.counts?.companies).toBe(COMPANIES);
    expect(done.counts?.rowsRead).toBe(COMPANIES * ROWS);
    expect(done.counts?.inserted).toBe(COMPANIES * ROWS);
    expect(Math.max(...rows)).toBeLessThanOrEqual(COMPANIES * ROWS);

    // The OpenAPI document describes the route and the field (additively: Run keeps its fields).
    const doc = JSON.parse((await get("/api/openapi.json")).text) as {
      paths: Record<string, { get?: { responses: Record<string, unknown> } }>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(
      Object.keys(
        doc.paths["/api/admin/schedulers/{id}/runs/{workflowId}"]?.get?.responses ?? {},
      ).sort(),
    ).toEqual(["200", "400", "401", "404"]);
    expect(Object.keys(doc.components.schemas.Run?.properties ?? {})).toEqual(
      expect.arrayContaining(["workflowId", "outcome", "counts", "error", "progress"]),
    );
    expect(Object.keys(doc.components.schemas.RunProgress?.properties ?? {}).sort()).toEqual([
      "companies",
      "counts",
      "executions",
      "inFlight",
      "items",
      "rowsRead",
      "source",
      "updatedAt",
    ]);

    // Admin-only, like the other run routes.
    expect((await fetch(`http://127.0.0.1:${api.port}${detailPath}`)).status).toBe(401);

    // An unknown run is a 404 with the envelope.
    const missing = await get("/api/admin/schedulers/csv-import/runs/no-such-run");
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text).error.code).toBe("not_found");
  }, 120_000);
});
