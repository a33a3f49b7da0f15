import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database } from "../adapters/db/client.ts";
import { startApiServer } from "../api/server.ts";
import type { AlertMessage } from "../control-plane/alert-notifier.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  waitFor,
} from "./support/harness.ts";

const PUBLIC_URL = "https://livedash.example.test";
const TOKEN = "alert-test-admin-token-0123456789";

/**
 * Scheduler ERROR / recovery webhooks against a real local receiver, with two API replicas
 * (each its own HTTP server, database pool and evaluator) sharing one database.
 */
describe("alert webhook notifications", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let receiver: TestHttpServer;
  /** Bodies of every POST the receiver got, and what it answered. */
  const received: { body: AlertMessage; status: number }[] = [];
  let failNext = 0;
  const replicas: { close(): Promise<void>; db: Database; port: number }[] = [];
  let companyId: string;

  const delivered = () => received.filter((r) => r.status === 200).map((r) => r.body);

  beforeAll(async () => {
    source = await startHttpServer((req, res) => {
      if (req.url === "/good.csv") {
        res.writeHead(200, { "content-type": "text/csv" }).end("a-1,01.05.2025 08:00:00\n");
      } else res.writeHead(404).end("not found");
    });
    receiver = await startHttpServer(async (req, res) => {
      let text = "";
      for await (const chunk of req) text += chunk;
      const status = failNext > 0 ? 500 : 200;
      if (failNext > 0) failNext -= 1;
      received.push({ body: JSON.parse(text) as AlertMessage, status });
      res.writeHead(status).end();
    });
    stack = await startTestStack({
      env: {
        SCHEDULER_ERROR_THRESHOLD: "1",
        ALERT_WEBHOOK_URL: `${receiver.url}/hook`,
        ALERT_EVALUATION_INTERVAL_MS: "250",
        API_PUBLIC_URL: `${PUBLIC_URL}/`,
        ADMIN_API_TOKEN: TOKEN,
        PORT: "0",
      },
    });
    await stack.startWorkers(["csv-import"]);
    companyId = (
      await stack.db.company.create({
        data: { name: "Broken Co", csvUrl: `${source.url}/missing.csv` },
      })
    ).id;
    for (const _ of [1, 2]) {
      const db = createDatabase(stack.databaseUrl, { poolSize: 3 });
      const api = await startApiServer({
        config: stack.config,
        client: stack.client,
        db,
        log: silentLog,
      });
      replicas.push({ ...api, db });
    }
  });

  afterAll(async () => {
    for (const replica of replicas) {
      await replica.close();
      await replica.db.$disconnect();
    }
    await stack?.close();
    await source?.close();
    await receiver?.close();
  });

  /** Enough evaluation rounds of both replicas for any duplicate to have shown up. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 1_500));

  it("sends one message when a scheduler turns ERROR, whatever the number of replicas", async () => {
    // A first good run makes the scheduler RUNNING (until then it is STARTING); the replicas
    // record the healthy state silently: no message for RUNNING.
    await stack.db.company.update({
      where: { id: companyId },
      data: { csvUrl: `${source.url}/good.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("SUCCEEDED");
    await waitFor("the first evaluation", async () =>
      (await stack.db.schedulerAlertState.findMany()).some(
        (s) => s.schedulerId === "csv-import" && s.state === "RUNNING",
      ),
    );
    await stack.db.company.update({
      where: { id: companyId },
      data: { csvUrl: `${source.url}/missing.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("FAILED");
    const [message] = await waitFor("the ERROR message", async () =>
      delivered().length > 0 ? delivered() : undefined,
    );
    await settle();
    expect(received).toHaveLength(1);
    const def = stack.defs["csv-import"];
    expect(message).toEqual({
      text: expect.stringMatching(
        /^LiveDash scheduler csv-import is ERROR \(was RUNNING\): the last 1 runs failed: Broken Co: .*404.*\. https:\/\/livedash\.example\.test\/api\/admin\/schedulers\/csv-import$/,
      ),
      event: "scheduler.error",
      schedulerId: "csv-import",
      scheduleId: def?.scheduleId,
      region: stack.config.region,
      from: "RUNNING",
      to: "ERROR",
      reason: expect.stringMatching(/^the last 1 runs failed: Broken Co: .*404/),
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      url: `${PUBLIC_URL}/api/admin/schedulers/csv-import`,
      dashboardUrl: `${PUBLIC_URL}/admin#scheduler-csv-import`,
    });
    // Health is answered by either replica meanwhile, and says the same.
    for (const { port } of replicas) {
      const health = await fetch(`http://127.0.0.1:${port}/api/admin/schedulers/health`);
      const body = (await health.json()) as { details: Record<string, { status: string }> };
      expect(body.details["csv-import"]?.status).toBe("ERROR");
    }
  });

  it("sends one recovery message when it runs well again", async () => {
    await stack.db.company.update({
      where: { id: companyId },
      data: { csvUrl: `${source.url}/good.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("SUCCEEDED");
    await waitFor("the recovery message", async () => delivered().length === 2);
    await settle();
    expect(received).toHaveLength(2);
    expect(received[1]?.body).toMatchObject({
      text: `LiveDash scheduler csv-import recovered: RUNNING (was ERROR). ${PUBLIC_URL}/api/admin/schedulers/csv-import`,
      event: "scheduler.recovered",
      schedulerId: "csv-import",
      from: "ERROR",
      to: "RUNNING",
      reason: "the scheduler is RUNNING",
    });
    const states = await stack.db.schedulerAlertState.findMany();
    expect(states.find((s) => s.schedulerId === "csv-import")?.state).toBe("RUNNING");
  });

  it("retries a failing receiver with backoff until it takes the message, once", async () => {
    failNext = 2;
    await stack.db.company.update({
      where: { id: companyId },
      data: { csvUrl: `${source.url}/gone-again.csv` },
    });
    const started = Date.now();
    expect((await stack.run("csv-import")).result.outcome).toBe("FAILED");
    await waitFor("the retried ERROR message", async () => delivered().length === 3, {
      timeoutMs: 20_000,
    });
    await settle();
    const attempts = received.slice(2);
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 200]);
    // The same message each time: same transition, same timestamp.
    expect(new Set(attempts.map((a) => JSON.stringify(a.body))).size).toBe(1);
    expect(attempts[0]?.body).toMatchObject({ from: "RUNNING", to: "ERROR" });
    // Backoff doubles from the evaluation interval (250 ms, then 500 ms).
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    const rows = await stack.db.alertNotification.findMany({ orderBy: { createdAt: "asc" } });
    expect(rows.map((r) => [r.attempts, r.deliveredAt !== null, r.failedAt])).toEqual([
      [1, true, null],
      [1, true, null],
      [3, true, null],
    ]);
    expect(rows[2]?.lastError).toBeNull();
  });

  it("gives up after ALERT_WEBHOOK_MAX_ATTEMPTS without blocking anything", async () => {
    // Nothing listens there: every delivery is refused.
    const port = await freePort();
    const config = {
      ...stack.config,
      alerts: {
        ...stack.config.alerts,
        webhookUrl: `http://127.0.0.1:${port}/hook`,
        maxAttempts: 2,
      },
    };
    const db = createDatabase(stack.databaseUrl, { poolSize: 2 });
    const lonely = await startApiServer({ config, client: stack.client, db, log: silentLog });
    for (const replica of replicas.splice(0)) {
      await replica.close();
      await replica.db.$disconnect();
    }
    replicas.push({ ...lonely, db });
    await stack.db.company.update({
      where: { id: companyId },
      data: { csvUrl: `${source.url}/good.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("SUCCEEDED");
    const row = await waitFor(
      "the message given up",
      async () =>
        (await stack.db.alertNotification.findFirst({ where: { failedAt: { not: null } } })) ??
        undefined,
    );
    expect(row.attempts).toBe(2);
    expect(row.lastError).toMatch(/ECONNREFUSED|fetch failed|connect/i);
    // Health answers promptly with the recovered state while deliveries keep failing.
    const asked = Date.now();
    const health = await fetch(`http://127.0.0.1:${lonely.port}/api/admin/schedulers/health`);
    const body = (await health.json()) as { details: Record<string, { status: string }> };
    expect(body.details["csv-import"]?.status).toBe("RUNNING");
    expect(Date.now() - asked).toBeLessThan(5_000);
  });
  it("leaves a transition decided on fresher reads alone (no flip-back by a slow replica)", async () => {
    // As if another replica, whose reads started after ours, had just moved the row.
    const scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    const queued = () => stack.db.alertNotification.count();
    const before = await queued();
    await stack.db.schedulerAlertState.update({
      where: { scheduleId },
      data: { state: "ERROR", changedAt: new Date(Date.now() + 600_000) },
    });
    await settle();
    expect((await stack.db.schedulerAlertState.findUnique({ where: { scheduleId } }))?.state).toBe(
      "ERROR",
    );
    expect(await queued()).toBe(before);
    // Once our reads are the fresher ones, the real state (RUNNING) wins, with its message.
    await stack.db.schedulerAlertState.update({
      where: { scheduleId },
      data: { changedAt: new Date(Date.now() - 1_000) },
    });
    await waitFor("the recovery queued", async () => (await queued()) === before + 1);
    expect((await stack.db.schedulerAlertState.findUnique({ where: { scheduleId } }))?.state).toBe(
      "RUNNING",
    );
  });
});
