import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CompanyHealthView,
  type FailingCount,
  recordCompanyImportOutcome,
} from "../adapters/db/company-import-health.ts";
import { createApp } from "../api/app.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";

const TOKEN = "company-health-admin-token-0123";

interface HealthPage {
  companies: CompanyHealthView[];
  nextCursor: string | null;
  failing: FailingCount[];
}

/**
 * Per-company import health, written by the csv-import activity with each company's final
 * outcome of a run, read by the admin API and the dashboard.
 */
describe("company import health", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let app: ReturnType<typeof createApp>;
  const ids: Record<string, string> = {};

  const get = async (query = "") => {
    const response = await app.request(`/api/admin/companies/health${query}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return { status: response.status, body: (await response.json()) as { data: HealthPage } };
  };
  const row = async (name: string) =>
    stack.db.companyImportHealth.findUnique({ where: { companyId: ids[name] ?? "" } });

  beforeAll(async () => {
    let flakyCalls = 0;
    source = await startHttpServer((req, res) => {
      if (req.url === "/ok.csv") {
        res.writeHead(200, { "content-type": "text/csv" }).end("h-1,01.05.2025 08:00:00\n");
      } else if (req.url === "/down.csv") {
        res.writeHead(503).end("down");
      } else if (req.url === "/flaky.csv") {
        // Fails its first attempt of every run (retryable), then answers.
        flakyCalls += 1;
        if (flakyCalls % 2 === 1) res.writeHead(503).end("busy");
        else res.writeHead(200, { "content-type": "text/csv" }).end("f-1,01.05.2025 08:00:00\n");
      } else res.writeHead(404).end("not found");
    });
    stack = await startTestStack({ env: { ADMIN_API_TOKEN: TOKEN } });
    for (const [name, path] of [
      ["Ok Co", "ok.csv"],
      ["Broken Co", "missing.csv"],
      ["Flaky Co", "flaky.csv"],
    ] as const) {
      ids[name] = (
        await stack.db.company.create({
          data: { name, csvUrl: `${source.url}/${path}`, region: stack.config.region },
        })
      ).id;
    }
    await stack.startWorkers(["csv-import"]);
    app = createApp({ config: stack.config, client: stack.client, db: stack.db, log: silentLog });
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("records each company's final outcome once per run; a retried success is no failure", async () => {
    for (let run = 1; run <= 3; run++) {
      expect((await stack.run("csv-import")).result.outcome).toBe("PARTIAL");
    }
    const broken = await row("Broken Co");
    expect(broken).toMatchObject({ consecutiveFailures: 3, lastSuccessAt: null });
    expect(broken?.lastError).toMatch(/HTTP 404/);
    const ok = await row("Ok Co");
    expect(ok).toMatchObject({ consecutiveFailures: 0, lastFailureAt: null, lastError: null });
    expect(ok?.lastSuccessAt).toEqual(ok?.lastAttemptAt);
    // Every run's first attempt failed with a 503 and was retried: still no failure recorded.
    expect(await row("Flaky Co")).toMatchObject({ consecutiveFailures: 0, lastFailureAt: null });
  }, 120_000);

  it("counts a run once however often its outcome is written, and never goes back in time", async () => {
    const before = await row("Broken Co");
    const again = {
      companyId: ids["Broken Co"] ?? "",
      runId: before?.lastRunId ?? "",
      at: new Date(),
      ok: false,
      error: "repeated",
    };
    await recordCompanyImportOutcome(stack.db, again);
    await recordCompanyImportOutcome(stack.db, again);
    expect((await row("Broken Co"))?.consecutiveFailures).toBe(3);
    // An older run's late write changes nothing either.
    await recordCompanyImportOutcome(stack.db, {
      ...again,
      runId: "an-older-run",
      at: new Date(Date.now() - 3_600_000),
    });
    expect(await row("Broken Co")).toMatchObject({
      consecutiveFailures: 3,
      lastRunId: before?.lastRunId,
    });
    // A deleted company is skipped, not an error.
    await recordCompanyImportOutcome(stack.db, {
      ...again,
      companyId: "00000000-0000-4000-8000-000000000000",
    });
  });

  it("lists companies with their health, failing ones by filter, in pages", async () => {
    const all = await get("?limit=2");
    expect(all.status).toBe(200);
    expect(all.body.data.companies).toHaveLength(2);
    const next = await get(`?limit=2&after=${all.body.data.nextCursor}`);
    expect(next.body.data.nextCursor).toBeNull();
    const names = [...all.body.data.companies, ...next.body.data.companies].map((c) => c.name);
    expect(names.sort()).toEqual(["Broken Co", "Flaky Co", "Ok Co"]);

    const failing = await get("?failing=true&minFailures=3");
    expect(failing.body.data.companies).toEqual([
      {
        companyId: ids["Broken Co"],
        name: "Broken Co",
        status: "ACTIVE",
        region: stack.config.region,
        lastAttemptAt: expect.any(String),
        lastSuccessAt: null,
        lastFailureAt: expect.any(String),
        consecutiveFailures: 3,
        lastError: expect.stringMatching(/HTTP 404/),
      },
    ]);
    expect((await get("?failing=true&minFailures=4")).body.data.companies).toEqual([]);
    expect(failing.body.data.failing).toEqual([
      { region: stack.config.region, minConsecutiveFailures: 1, companies: 1 },
      { region: stack.config.region, minConsecutiveFailures: 3, companies: 1 },
      { region: stack.config.region, minConsecutiveFailures: 10, companies: 0 },
    ]);
    expect((await get("?limit=0")).status).toBe(400);
    expect((await get("?after=not-a-uuid")).status).toBe(400);
    const anonymous = await app.request("/api/admin/companies/health");
    expect(anonymous.status).toBe(401);
  });

  it("shows the failing companies on the dashboard", async () => {
    const page = await app.request("/admin", { headers: { cookie: `livedash_admin=${TOKEN}` } });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('<h2 id="companies">Company imports</h2>');
    expect(html).toMatch(/data-failing="3">1</);
    expect(html).toContain(`data-company="${ids["Broken Co"]}"`);
    expect(html).not.toContain(`data-company="${ids["Ok Co"]}"`);
  });
  it("counts a retryable failure once, when its last attempt fails", async () => {
    ids["Down Co"] = (
      await stack.db.company.create({
        data: { name: "Down Co", csvUrl: `${source.url}/down.csv`, region: stack.config.region },
      })
    ).id;
    const downCalls = () => source.requests.filter((r) => r.url === "/down.csv").length;
    expect((await stack.run("csv-import")).result.outcome).toBe("PARTIAL");
    // Three attempts (the workflow's retry policy), one failure recorded.
    expect(downCalls()).toBe(3);
    const down = await row("Down Co");
    expect(down).toMatchObject({ consecutiveFailures: 1, lastSuccessAt: null });
    expect(down?.lastError).toMatch(/HTTP 503/);
    expect((await row("Broken Co"))?.consecutiveFailures).toBe(4);
  }, 90_000);
});
