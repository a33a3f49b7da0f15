import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../adapters/db/client.ts";
import { createApp } from "../api/app.ts";
import type { HealthReport } from "../control-plane/scheduler-status.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  testConfig,
  testDatabase,
} from "./support/harness.ts";

/**
 * The documented geographic split: REGION=<r> with CSV_COMPANIES_FILTER=region:<r>. Two regions
 * share one Temporal namespace and one database and never touch each other's companies.
 */
describe("two regions side by side", () => {
  let db: Database;
  let databaseUrl: string;
  let source: TestHttpServer;
  const suffix = randomBytes(2).toString("hex");
  const us = `us${suffix}`;
  const eu = `eu${suffix}`;
  const stacks: Record<string, TestStack> = {};

  beforeAll(async () => {
    source = await startHttpServer((req, res) => {
      const name = /^\/(\w+)\.csv$/.exec(req.url ?? "")?.[1] ?? "x";
      res
        .writeHead(200, { "content-type": "text/csv" })
        .end(`${name}-1,01.05.2025 08:00:00,01.05.2025 08:01:00\n`);
    });
    const database = await testDatabase();
    db = database.db;
    databaseUrl = database.url;
    await db.company.createMany({
      data: [
        { name: "us-a", region: us, csvUrl: `${source.url}/usa.csv` },
        { name: "us-b", region: us, csvUrl: `${source.url}/usb.csv` },
        { name: "eu-a", region: eu, csvUrl: `${source.url}/eua.csv` },
        { name: "nowhere", region: null, csvUrl: `${source.url}/nowhere.csv` },
      ],
    });
    for (const region of [us, eu]) {
      stacks[region] = await startTestStack({
        database: database,
        env: { REGION: region, CSV_COMPANIES_FILTER: `region:${region}` },
        workerTypes: ["csv-import", "import-processing"],
      });
    }
  });

  afterAll(async () => {
    for (const stack of Object.values(stacks)) await stack.close();
    await source?.close();
    await db?.$disconnect();
  });

  it("each region has its own schedules and task queues and imports only its companies", async () => {
    const [usStack, euStack] = [stacks[us], stacks[eu]];
    if (!usStack || !euStack) throw new Error("stacks missing");
    expect(usStack.defs["csv-import"]).toMatchObject({
      scheduleId: `livedash-csv-import-${us}`,
      taskQueue: `livedash-csv-import-${us}`,
    });
    expect(euStack.defs["csv-import"]?.taskQueue).toBe(`livedash-csv-import-${eu}`);

    const [usRun, euRun] = await Promise.all([
      usStack.run("csv-import"),
      euStack.run("csv-import"),
    ]);
    expect(usRun.result.counts).toMatchObject({ companies: 2, inserted: 2 });
    expect(euRun.result.counts).toMatchObject({ companies: 1, inserted: 1 });
    const imported = await db.sessionImport.findMany({ include: { company: true } });
    expect(imported.map((i) => `${i.company.region}:${i.externalSessionId}`).sort()).toEqual([
      `${eu}:eua-1`,
      `${us}:usa-1`,
      `${us}:usb-1`,
    ]);
    // Import processing is split the same way.
    const usProcessing = await usStack.run("import-processing");
    expect(usProcessing.result.counts).toMatchObject({ considered: 2 });
    expect(
      await db.sessionImport.count({ where: { status: "PENDING", company: { region: eu } } }),
    ).toBe(1);
  });

  it("an API with API_REGIONS lists both regions' schedulers in health", async () => {
    const config = testConfig(databaseUrl, { API_REGIONS: `${us},${eu}` });
    const client = stacks[us]?.client;
    if (!client) throw new Error("no client");
    const app = createApp({ config, client, db, log: silentLog });
    const response = await app.request("/api/admin/schedulers/health");
    const body = (await response.json()) as HealthReport;
    expect(Object.keys(body.details)).toEqual(
      expect.arrayContaining([`csv-import@${us}`, `csv-import@${eu}`, `import-processing@${eu}`]),
    );
    expect(body.details[`csv-import@${us}`]?.status).toBe("RUNNING");
    expect(body.details[`csv-import@${eu}`]?.lastSuccess).not.toBeNull();
    // Regions without workers in this test (session/batch processing) are reported too.
    expect(body.schedulers.total).toBe(2 * 5);
  });

  it("the dashboard's actions work on region-qualified scheduler ids", async () => {
    const config = testConfig(databaseUrl, { API_REGIONS: `${us},${eu}` });
    const client = stacks[us]?.client;
    if (!client) throw new Error("no client");
    const app = createApp({ config, client, db, log: silentLog });
    const post = (action: string) =>
      app.request("http://localhost/admin/actions", {
        method: "POST",
        headers: {
          origin: "http://localhost",
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({
          action,
          schedulerId: `csv-import@${eu}`,
          note: "eu source maintenance",
        }).toString(),
      });
    const paused = await post("pause");
    expect(paused.status).toBe(303);
    expect(paused.headers.get("location")).toBe(
      `/admin?done=pause&scheduler=csv-import%40${eu}#scheduler-csv-import@${eu}`,
    );
    const handle = client.schedule.getHandle(`livedash-csv-import-${eu}`);
    expect((await handle.describe()).state).toMatchObject({
      paused: true,
      note: "eu source maintenance",
    });
    // The other region's schedule is untouched.
    expect(
      (await client.schedule.getHandle(`livedash-csv-import-${us}`).describe()).state.paused,
    ).toBe(false);
    expect((await post("resume")).status).toBe(303);
    expect((await handle.describe()).state.paused).toBe(false);
  });
});
