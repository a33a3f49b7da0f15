import { Context } from "@temporalio/activity";
import type { ActivityDeps } from "./deps.ts";

export interface PruneHistoryInput {
  /** Rows older than this (ISO time) go; the workflow fixes it, so a retry uses the same one. */
  olderThan: string;
  /** Rows per DELETE statement. */
  batchSize: number;
}

/** Rows deleted per table, and the statements it took. */
export interface PruneHistoryResult {
  runs: number;
  actions: number;
  notifications: number;
  batches: number;
}

/**
 * History retention: finished runs (SchedulerRun), the operators' action audit (SchedulerAction)
 * and settled webhook messages (AlertNotification) older than the cut-off are deleted in batches
 * of `batchSize`, oldest first, each batch its own short statement (bounded locks and WAL,
 * whatever the table's size; an index on each time column finds the batch). A RUNNING run and a
 * message still waiting for delivery are never deleted. Idempotent: a retry deletes what is left,
 * and carries the counts of the attempt before it (heartbeat details). Per-company import health
 * and the alert state are one row per company or schedule (current state, not history): kept.
 */
export function createHistoryRetentionActivities({ db, log }: ActivityDeps) {
  async function pruneHistory(input: PruneHistoryInput): Promise<PruneHistoryResult> {
    const ctx = Context.current();
    const result: PruneHistoryResult = {
      runs: 0,
      actions: 0,
      notifications: 0,
      batches: 0,
      ...(ctx.info.heartbeatDetails as PruneHistoryResult | undefined),
    };
    // Timestamps are stored as UTC without a zone: compare in UTC whatever the session's zone.
    const cutoff = new Date(input.olderThan).toISOString();
    const limit = input.batchSize;
    const batches: [keyof Omit<PruneHistoryResult, "batches">, () => Promise<number>][] = [
      [
        "runs",
        () => db.$executeRaw`
          DELETE FROM "SchedulerRun" WHERE id IN (
            SELECT id FROM "SchedulerRun"
            WHERE "finishedAt" < (${cutoff}::timestamptz AT TIME ZONE 'UTC')
              AND outcome <> 'RUNNING'
            ORDER BY "finishedAt" LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)`,
      ],
      [
        "actions",
        () => db.$executeRaw`
          DELETE FROM "SchedulerAction" WHERE id IN (
            SELECT id FROM "SchedulerAction"
            WHERE "createdAt" < (${cutoff}::timestamptz AT TIME ZONE 'UTC')
            ORDER BY "createdAt" LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)`,
      ],
      [
        "notifications",
        () => db.$executeRaw`
          DELETE FROM "AlertNotification" WHERE id IN (
            SELECT id FROM "AlertNotification"
            WHERE "createdAt" < (${cutoff}::timestamptz AT TIME ZONE 'UTC')
              AND ("deliveredAt" IS NOT NULL OR "failedAt" IS NOT NULL)
            ORDER BY "createdAt" LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)`,
      ],
    ];
    for (const [table, deleteBatch] of batches) {
      for (;;) {
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        const deleted = await deleteBatch();
        result[table] += deleted;
        result.batches += 1;
        ctx.heartbeat(result);
        if (deleted < limit) break;
      }
    }
    log.info({ olderThan: cutoff, ...result }, "history pruned");
    return result;
  }

  return { pruneHistory };
}
