import type { Client } from "@temporalio/client";
import type { Database } from "../adapters/db/client.ts";
import type { FinishedRunOutcome, SuccessfulRunOutcome } from "../domain/run-outcome.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";

/**
 * Runs record their own outcome, but a run that times out, is terminated or is cancelled
 * before its recording step cannot. This fills those in from Temporal's visibility store, so
 * the run history and metrics never miss a failure.
 */

const OUTCOME_OF_STATUS: Record<string, Exclude<FinishedRunOutcome, SuccessfulRunOutcome>> = {
  FAILED: "FAILED",
  TIMED_OUT: "TIMED_OUT",
  TERMINATED: "CANCELLED",
  CANCELLED: "CANCELLED",
};

/** Closed runs looked at per sync and scheduler; older ones were synced before. */
const MAX_PER_SYNC = 200;
const LOOKBACK_MS = 24 * 3_600_000;
const lastSynced = new Map<string, number>();

export async function syncRunOutcomes(options: {
  client: Client;
  db: Database;
  defs: SchedulerDefinition[];
  /** At most one sync per schedule within this window (the API calls this on every list). */
  minIntervalMs?: number;
  now?: Date;
}): Promise<number> {
  const now = options.now ?? new Date();
  const minInterval = options.minIntervalMs ?? 10_000;
  let updated = 0;
  for (const def of options.defs) {
    const previous = lastSynced.get(def.scheduleId);
    if (previous !== undefined && now.getTime() - previous < minInterval) continue;
    lastSynced.set(def.scheduleId, now.getTime());
    try {
      updated += await syncSchedule(options.client, options.db, def, now);
    } catch {
      // Visibility unavailable: the history shows what runs recorded themselves; try next time.
      lastSynced.delete(def.scheduleId);
    }
  }
  return updated;
}

async function syncSchedule(
  client: Client,
  db: Database,
  def: SchedulerDefinition,
  now: Date,
): Promise<number> {
  const since = new Date(now.getTime() - LOOKBACK_MS).toISOString();
  const query =
    `TemporalScheduledById = '${def.scheduleId}' AND CloseTime > '${since}' ` +
    `AND ExecutionStatus IN ('Failed', 'TimedOut', 'Terminated', 'Canceled')`;
  let updated = 0;
  let seen = 0;
  for await (const execution of client.workflow.list({ query })) {
    if (++seen > MAX_PER_SYNC) break;
    const outcome = OUTCOME_OF_STATUS[execution.status.name];
    if (!outcome || !execution.closeTime) continue;
    const key = { workflowId: execution.workflowId, runId: execution.runId };
    const existing = await db.schedulerRun.findUnique({ where: { workflowId_runId: key } });
    if (existing && existing.outcome !== "RUNNING") continue;
    const error = `workflow ${execution.status.name.toLowerCase().replace("_", " ")} (recorded from Temporal)`;
    const fields = {
      outcome,
      finishedAt: execution.closeTime,
      durationMs: execution.closeTime.getTime() - execution.startTime.getTime(),
      error,
    };
    await db.schedulerRun.upsert({
      where: { workflowId_runId: key },
      create: {
        ...key,
        schedulerId: def.id,
        scheduleId: def.scheduleId,
        startedAt: execution.startTime,
        ...fields,
      },
      update: fields,
    });
    updated += 1;
  }
  return updated;
}
