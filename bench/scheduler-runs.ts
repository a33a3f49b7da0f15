/**
 * Scheduler runs as a bench sees them: a Temporal client, a schedule triggered and timed to its
 * recorded finish, and the activity executions its history records.
 */

import { Client, Connection, ScheduleOverlapPolicy } from "@temporalio/client";
import type { Database } from "../adapters/db/client.ts";

export async function connectClient(
  address: string,
): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection }), close: () => connection.close() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface TimedRun {
  /** Trigger to the run's recorded finish (SchedulerRun.finishedAt). */
  ms: number;
  outcome: string;
  counts: unknown;
  /** The run's own record (SchedulerRun.startedAt, finishedAt, workflow and run id). */
  startedAt: Date;
  finishedAt: Date;
  workflowId: string;
  runId: string;
}

/**
 * Triggers a schedule and waits (bounded) for the SchedulerRun row it produces to be finished.
 * Workflow ids carry the trigger time to the second, so triggers are spaced a second apart.
 */
export async function triggerAndTime(
  client: Client,
  db: Database,
  scheduleId: string,
  timeoutMs: number,
): Promise<TimedRun> {
  const known = new Set(
    (await db.schedulerRun.findMany({ where: { scheduleId }, select: { id: true } })).map(
      (r) => r.id,
    ),
  );
  const lastStart = await db.schedulerRun.findFirst({
    where: { scheduleId },
    orderBy: { startedAt: "desc" },
    select: { startedAt: true },
  });
  const wait = Math.floor((lastStart?.startedAt.getTime() ?? 0) / 1000) * 1000 + 1100 - Date.now();
  if (wait > 0) await sleep(wait);
  const triggeredAt = Date.now();
  await client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
  const deadline = triggeredAt + timeoutMs;
  for (;;) {
    // A worker in this process can stall the event loop for seconds (see the report), which
    // times out pool connections: a failed poll is retried until the deadline, not fatal.
    const run = await db.schedulerRun
      .findFirst({
        where: { scheduleId, finishedAt: { not: null }, id: { notIn: [...known] } },
      })
      .catch(() => null);
    if (run?.finishedAt) {
      return {
        ms: run.finishedAt.getTime() - triggeredAt,
        outcome: run.outcome,
        counts: run.counts,
        startedAt: run.startedAt,
        finishedAt: run.finishedAt,
        workflowId: run.workflowId,
        runId: run.runId,
      };
    }
    if (Date.now() > deadline) throw new Error(`${scheduleId}: no finished run in ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** One activity execution of a workflow run, as its Temporal history records it. */
export interface ActivityExecution {
  identity: string;
  attempt: number;
  /** Why the previous attempt failed (retried executions only). */
  lastFailure?: string;
  scheduledAt: number;
  startedAt: number;
  closedAt: number;
}

/** The executions of `activityType` in a run's history (times in ms since the epoch). */
export async function activityExecutions(
  client: Client,
  workflowId: string,
  runId: string,
  activityType: string,
): Promise<ActivityExecution[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const ms = (time: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(time?.seconds ?? 0) * 1000 + Math.floor((time?.nanos ?? 0) / 1e6);
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<
    string,
    { identity: string; attempt: number; lastFailure?: string; at: number }
  >();
  const executions: ActivityExecution[] = [];
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    const at = ms(event.eventTime);
    const attrs = event.activityTaskScheduledEventAttributes;
    if (attrs) scheduled.set(id, { type: attrs.activityType?.name ?? "", at });
    const start = event.activityTaskStartedEventAttributes;
    if (start) {
      started.set(id, {
        identity: start.identity ?? "",
        attempt: start.attempt ?? 1,
        ...(start.lastFailure?.message ? { lastFailure: start.lastFailure.message } : {}),
        at,
      });
    }
    const closed =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes;
    if (closed) {
      const task = scheduled.get(String(closed.scheduledEventId));
      const run = started.get(String(closed.startedEventId));
      if (task?.type === activityType && run) {
        executions.push({ ...run, scheduledAt: task.at, startedAt: run.at, closedAt: at });
      }
    }
  }
  return executions;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** Deletes a bench's schedules, so no later run fires; one already gone is no error. */
export async function deleteSchedules(client: Client, scheduleIds: readonly string[]) {
  for (const scheduleId of scheduleIds) {
    await client.schedule
      .getHandle(scheduleId)
      .delete()
      .catch(() => undefined);
  }
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
