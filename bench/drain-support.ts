import { readFileSync } from "node:fs";
import type { Client } from "@temporalio/client";
import { ScheduleOverlapPolicy } from "@temporalio/client";
import type { Database } from "../lib/db.ts";
import { spawnWorkerProcess, type WorkerProcess } from "../test/support/processes.ts";

/** Helpers of the draining benchmarks (throughput, company count, backlog drain). */

const STARTUP_TIMEOUT_MS = 180_000;

/** `count` worker processes of these scheduler types, ready to poll. */
export async function startWorkerProcesses(
  prefix: string,
  count: number,
  env: Record<string, string>,
  args: string[],
): Promise<WorkerProcess[]> {
  const workers = await Promise.all(
    Array.from({ length: count }, (_, i) => spawnWorkerProcess(`${prefix}-${i + 1}`, env, args)),
  );
  await Promise.all(workers.map((w) => w.waitReady(STARTUP_TIMEOUT_MS)));
  return workers;
}

/** SIGTERM, then SIGKILL after 15 s: a bench never leaves a process behind. */
export async function stopWorkerProcesses(workers: WorkerProcess[]): Promise<void> {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill("SIGTERM");
    }
  }
  for (const worker of workers) {
    const timer = setTimeout(() => worker.child.kill("SIGKILL"), 15_000);
    await worker.exited;
    clearTimeout(timer);
  }
}

export interface CpuShare {
  /** Share of the machine's CPU time spent at normal priority (the bench and its services). */
  busy: number;
  /** Share spent by niced processes (other work on the machine, kept out of the bench's way). */
  niced: number;
}

/**
 * Machine-wide CPU use between two readings of /proc/stat (0..1 of all cores), split into normal
 * priority and niced time: other work on a shared machine runs niced, so `busy` near 1 means
 * the bench itself ran into the CPU ceiling.
 */
export function cpuMeter(): () => CpuShare {
  const read = () => {
    const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const nice = fields[1] ?? 0;
    // guest time is already counted in user time.
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { idle, nice, total };
  };
  const start = read();
  return () => {
    const end = read();
    const total = end.total - start.total;
    if (total <= 0) return { busy: 0, niced: 0 };
    const niced = (end.nice - start.nice) / total;
    return { busy: 1 - (end.idle - start.idle) / total - niced, niced };
  };
}

/**
 * Keeps the given schedules running back to back (a trigger as soon as the last run finished,
 * the schedule's SKIP policy guarding overlap), as a tight cron would, until stopped.
 */
export function keepTriggering(client: Client, db: Database, scheduleIds: string[]) {
  let stopped = false;
  const loop = async (scheduleId: string) => {
    while (!stopped) {
      const running = await db.schedulerRun
        .count({ where: { scheduleId, outcome: "RUNNING" } })
        .catch(() => 1);
      if (running === 0) {
        await client.schedule
          .getHandle(scheduleId)
          .trigger(ScheduleOverlapPolicy.SKIP)
          .catch(() => undefined);
        // Started workflow ids carry the second: never two triggers in one second.
        await new Promise((resolve) => setTimeout(resolve, 1_100));
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  const loops = scheduleIds.map(loop);
  return async () => {
    stopped = true;
    await Promise.all(loops);
  };
}

/** The largest history of any execution of a workflow id, and how many executions it took. */
export async function executionHistories(
  client: Client,
  workflowId: string,
): Promise<{ executions: number; maxEvents: number }> {
  let executions = 0;
  let maxEvents = 0;
  for await (const execution of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    executions += 1;
    maxEvents = Math.max(maxEvents, execution.historyLength);
  }
  return { executions, maxEvents };
}
