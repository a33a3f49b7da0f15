import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createLogger } from "../adapters/logger.ts";
import { type RunningWorkers, startWorkers } from "../workers/runtime.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerAndWait,
} from "./support/harness.ts";

const CSV =
  "log-1,30.04.2025 11:41:48,30.04.2025 11:45:02,31.176.221.57,BA,english,1,happy,no,no,,3.977,6537,0.0010,Greeting,Good day\n";

interface LogLine {
  msg?: string;
  workflowId?: string;
  runId?: string;
  activityType?: string;
  activityId?: string;
  attempt?: number;
  companyId?: string;
}

/**
 * A real csv-import run through a real worker whose logger writes JSON lines into this test:
 * the lines an activity writes carry its workflow id, run id, activity type and attempt, so an
 * operator can find every line of one run. The CSV endpoint fails once, so the company's import
 * activity logs on its second attempt.
 */
describe("activity log lines name their run and attempt", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let workers: RunningWorkers;
  const lines: LogLine[] = [];
  let csvRequests = 0;

  beforeAll(async () => {
    source = await startHttpServer((_req, res) => {
      csvRequests += 1;
      if (csvRequests === 1) res.writeHead(503).end("try again");
      else res.writeHead(200, { "content-type": "text/csv" }).end(CSV);
    });
    stack = await startTestStack();
    const log = createLogger("info", "worker", {
      write: (line: string) => {
        lines.push(JSON.parse(line) as LogLine);
      },
    });
    workers = await startWorkers({
      config: stack.config,
      db: stack.db,
      log,
      types: ["csv-import"],
      workflowBundle: { codePath: inject("workflowBundlePath") },
    });
  });

  afterAll(async () => {
    await workers?.shutdown();
    await stack?.close();
    await source?.close();
  });

  it("carries workflowId, runId, activityType and attempt on the activity's lines", async () => {
    const company = await stack.db.company.create({
      data: { name: "Logged", csvUrl: `${source.url}/logged.csv` },
    });
    const scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    const { workflowId } = await triggerAndWait(stack.client, scheduleId, { timeoutMs: 60_000 });
    const { runId } = await stack.client.workflow.getHandle(workflowId).describe();
    expect(csvRequests, "the first fetch failed, the retry succeeded").toBe(2);

    const finished = lines.filter(
      (line) => line.msg === "csv import finished" && line.companyId === company.id,
    );
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({
      workflowId,
      runId,
      activityType: "importCompanyCsv",
      attempt: 2,
    });
    expect(finished[0]?.activityId).toEqual(expect.any(String));

    // Outside an activity the logger is the plain one: no stale activity fields.
    const polling = lines.find((line) => line.msg === "worker polling");
    expect(polling).toBeDefined();
    expect(polling?.workflowId).toBeUndefined();
    expect(polling?.activityType).toBeUndefined();
  }, 90_000);
});
