import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createActivities } from "../activities/index.ts";
import { createDatabase, type Database } from "../adapters/db/client.ts";
import { createOpenAIClient } from "../adapters/openai.ts";
import { silentLog, testConfig, testDatabase } from "./support/harness.ts";
import { seedAnalysableSession } from "./support/seed-sessions.ts";

/**
 * A PostgreSQL server (or a URL) set to another time zone: Prisma writes and reads timestamps
 * as UTC, so the platform's SQL, whose now() follows the session's zone, must run in UTC too.
 * Here the URL asks for Tokyo (9 hours ahead of UTC); before sessions were pinned to UTC, a
 * request queued a second ago counted as waiting for 9 hours.
 */
describe("a database session whose time zone is not UTC", () => {
  let admin: Awaited<ReturnType<typeof testDatabase>>;
  let db: Database;
  let url: string;

  beforeAll(async () => {
    admin = await testDatabase();
    const tokyo = new URL(admin.url);
    tokyo.searchParams.set("options", "-c TimeZone=Asia/Tokyo -c application_name=tz-test");
    url = tokyo.toString();
    db = createDatabase(url);
  });

  afterAll(async () => {
    await db?.$disconnect();
    await admin?.drop();
  });

  it("runs in UTC, keeping the URL's other options", async () => {
    expect(
      await db.$queryRaw`SELECT current_setting('TimeZone') AS tz, current_setting('application_name') AS app`,
    ).toEqual([{ tz: "UTC", app: "tz-test" }]);
    const [row] = await db.$queryRaw<{ at: Date }[]>`SELECT now()::timestamp(3) AS at`;
    expect(Math.abs((row?.at.getTime() ?? 0) - Date.now())).toBeLessThan(5_000);
  });

  it("a request queued just now has not waited BATCH_MAX_WAIT_MS; one queued longer ago has", async () => {
    const config = testConfig(url);
    const activities = createActivities({
      db,
      log: silentLog,
      config,
      openai: createOpenAIClient(config),
    });
    const company = await db.company.create({
      data: { name: "Tokyo", csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    const sessionId = await seedAnalysableSession(db, company.id, ["User: hello?"]);
    const request = await db.aIProcessingRequest.create({
      data: { sessionId, companyId: company.id, model: "gpt-4o-mini" },
    });
    const ready = () =>
      activities.listCompaniesReadyForBatch({ minRequests: 10, maxWaitMs: 30 * 60_000 });

    expect(await ready()).toEqual([]);
    await db.aIProcessingRequest.update({
      where: { id: request.id },
      data: { requestedAt: new Date(Date.now() - 31 * 60_000) },
    });
    expect(await ready()).toEqual([company.id]);
  });
});
