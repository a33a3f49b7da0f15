import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createDatabase } from "../lib/db.ts";
import { qualifiedName } from "../lib/schedulers.ts";
import { PROJECT_ROOT } from "../scripts/services/temporal.ts";
import {
  type BenchContext,
  benchEnv,
  connectClient,
  startCsvSource,
  triggerAndTime,
} from "./support.ts";

const TARGET_MB = 300;
/**
 * V8 collects lazily when the heap limit is far away (it is ~4 GB on a 24 GB machine), so a
 * long import leaves garbage in RSS: measured with Node's default limit and with the limit the
 * deployment files set for workers (NODE_OPTIONS in docker-compose.yml and deploy/k8s).
 */
const HEAP_SETTINGS = [
  { label: "default heap", nodeOptions: "" },
  { label: "NODE_OPTIONS=--max-old-space-size=256", nodeOptions: "--max-old-space-size=256" },
];
const STARTUP_TIMEOUT_MS = 120_000;

/** VmRSS and VmHWM of a process, in MB (Linux /proc). */
function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One company serving a large CSV, imported by a csv-import worker in a child process
 * (`node --import tsx workers/main.ts --scheduler=csv-import`); a fresh child per file size, so
 * its high-water mark belongs to that size alone.
 */
export async function memoryBench(ctx: BenchContext): Promise<void> {
  const sizes = ctx.large ? [100_000, 1_000_000] : [100_000];
  const source = await startCsvSource();
  const url = await ctx.services.freshDatabase("memory");
  const db = createDatabase(url, { poolSize: 2 });
  const temporal = await connectClient(ctx.services.temporalAddress);
  try {
    for (const heap of HEAP_SETTINGS) {
      const peaks: number[] = [];
      for (const rows of sizes) {
        const region = `m${randomBytes(3).toString("hex")}`;
        const scheduleId = qualifiedName("csv-import", region);
        await db.sessionImport.deleteMany();
        await db.company.deleteMany();
        await db.company.create({
          data: { name: `Memory ${rows}`, csvUrl: source.urlFor(`m${rows}`, rows) },
        });
        const child = spawn(
          process.execPath,
          ["--import", "tsx", join("workers", "main.ts"), "--scheduler=csv-import"],
          {
            cwd: PROJECT_ROOT,
            env: {
              ...process.env,
              NODE_OPTIONS: heap.nodeOptions,
              ...benchEnv(url, ctx.services.temporalAddress, region, {
                WORKER_HEALTH_PORT: "0",
                LOG_LEVEL: "error",
              }),
            },
            stdio: ["ignore", "ignore", "inherit"],
          },
        );
        const pid = child.pid;
        if (pid === undefined) throw new Error("worker child did not start");
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        try {
          // Ready when its schedule exists (reconciled) and its worker polls the task queue.
          const deadline = Date.now() + STARTUP_TIMEOUT_MS;
          for (;;) {
            if (child.exitCode !== null) throw new Error("worker child exited during startup");
            const described = await temporal.client.workflowService
              .describeTaskQueue({
                namespace: "default",
                taskQueue: { name: scheduleId },
                taskQueueType: 1, // workflow
              })
              .catch(() => undefined);
            if ((described?.pollers?.length ?? 0) > 0) break;
            if (Date.now() > deadline) throw new Error("worker child did not start polling");
            await sleep(250);
          }
          await sleep(1_000);
          const idle = memoryOf(pid)?.rss ?? Number.NaN;

          let sampledPeak = 0;
          let sampling = true;
          const sampler = (async () => {
            while (sampling) {
              sampledPeak = Math.max(sampledPeak, memoryOf(pid)?.rss ?? 0);
              await sleep(50);
            }
          })();
          const run = await triggerAndTime(temporal.client, db, scheduleId, 600_000);
          sampling = false;
          await sampler;
          const hwm = memoryOf(pid)?.hwm ?? sampledPeak;
          if (run.outcome !== "SUCCEEDED") throw new Error(`memory run ${run.outcome}`);
          peaks.push(hwm);
          ctx.log(
            `  memory ${rows} rows, ${heap.label}: idle ${idle.toFixed(0)} MB, peak (VmHWM) ${hwm.toFixed(0)} MB, sampled ${sampledPeak.toFixed(0)} MB, ${run.ms} ms`,
          );
          ctx.record({
            bench: "memory",
            metric: `worker peak RSS, ${rows} rows, ${heap.label}`,
            value: hwm,
            unit: "MB",
            baseline: "same worker idle (started, polling)",
            baselineValue: idle,
            ratio: hwm / idle,
            target: `< ${TARGET_MB} MB`,
            met: hwm < TARGET_MB,
            note: `VmHWM of the child worker; ${(rows / run.ms) * 1000 > 0 ? ((rows / run.ms) * 1000).toFixed(0) : "?"} rows/s`,
          });
        } finally {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
          await exited;
          clearTimeout(timer);
          await temporal.client.schedule
            .getHandle(scheduleId)
            .delete()
            .catch(() => undefined);
        }
      }
      const [small, big] = peaks;
      if (small !== undefined && big !== undefined) {
        ctx.record({
          bench: "memory",
          metric: `peak RSS growth 100k -> 1M rows, ${heap.label}`,
          value: big,
          unit: "MB",
          baseline: "peak at 100k rows",
          baselineValue: small,
          ratio: big / small,
          target: "~1.0 (not growing)",
          met: big / small < 1.2,
        });
      }
    }
  } finally {
    await temporal.close();
    await db.$disconnect();
    await source.close();
  }
}
