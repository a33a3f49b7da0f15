import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../scripts/services/temporal.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerAndWait,
} from "./support/harness.ts";
import { spawnApiProcess, spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";

const ADMIN_TOKEN = "compiled-build-admin-token-0123";
const CSV = "built-1,30.04.2025 11:41:48,30.04.2025 11:45:02\n";

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: PROJECT_ROOT, timeout: 240_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/**
 * The output of `npm run build` run the way the image runs it: `node dist/...`, no tsx. The
 * worker must find the workflow bundle built for the compiled code, both processes must reach
 * /readyz, a scheduled run must go through the compiled worker, and SIGTERM must end each with
 * a graceful exit 0.
 */
describe("compiled build (npm run build, node dist/...)", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let worker: WorkerProcess | undefined;
  let api: Awaited<ReturnType<typeof spawnApiProcess>> | undefined;

  beforeAll(async () => {
    const build = await run("npm", ["run", "build"]);
    expect(build.code, `npm run build failed:\n${build.output}`).toBe(0);
    source = await startHttpServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/csv" }).end(CSV);
    });
    stack = await startTestStack();
  }, 300_000);

  afterAll(async () => {
    worker?.child.kill("SIGKILL");
    api?.child.kill("SIGKILL");
    await stack?.close();
    await source?.close();
  });

  it("builds JavaScript entry points and a workflow bundle for them", () => {
    for (const file of [
      "dist/workers/main.js",
      "dist/api/main.js",
      "dist/scripts/start.js",
      "dist/scripts/db-migrate.js",
      "dist/adapters/db/generated/prisma/client.js",
      "dist/.build/workflow-bundle.js",
    ]) {
      expect(existsSync(join(PROJECT_ROOT, file)), file).toBe(true);
    }
  });

  it("runs the compiled worker and API to /readyz and a csv-import run", async () => {
    const env = { ...stack.env, LOG_LEVEL: "info" };
    worker = await spawnWorkerProcess(
      "compiled-worker",
      env,
      ["--scheduler=csv-import"],
      "compiled",
    );
    api = await spawnApiProcess(
      { ...stack.env, SCHEDULER_ENABLED: "false", ADMIN_API_TOKEN: ADMIN_TOKEN },
      "compiled",
    );
    await worker.waitReady(90_000);
    expect(await worker.readyz()).toBe(200);
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    // The prebuilt bundle matched the compiled workflow code: no bundling at startup.
    expect(worker.output()).not.toContain("workflow bundle missing or out of date");

    const company = await stack.db.company.create({
      data: { name: "Compiled", csvUrl: `${source.url}/built.csv` },
    });
    const scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    const { result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(
      stack.client,
      scheduleId,
      { timeoutMs: 60_000 },
    );
    expect(result.outcome).toBe("SUCCEEDED");
    expect(await stack.db.sessionImport.count({ where: { companyId: company.id } })).toBe(1);
  }, 180_000);

  it("ends both processes gracefully with exit code 0 on SIGTERM", async () => {
    if (!worker || !api) throw new Error("the processes did not start");
    worker.child.kill("SIGTERM");
    api.child.kill("SIGTERM");
    expect(await worker.exited, worker.output()).toBe(0);
    expect(await api.exited, api.output()).toBe(0);
    expect(worker.output()).toContain("workers stopped");
  }, 90_000);
});
