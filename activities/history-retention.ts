import { Context } from "@temporalio/activity";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
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
interface PrunedTable {
  counted: keyof Omit<PruneHistoryResult, "batches">;
  table: string;
  /** The indexed time column that dates a row. */
  time: string;
  /** What must hold besides age: a live row is never pruned. */
  keep: Prisma.Sql;
}

const PRUNED_TABLES: readonly PrunedTable[] = [
  {
    counted: "runs",
    table: "SchedulerRun",
    time: "finishedAt",
    keep: Prisma.sql`AND outcome <> 'RUNNING'`,
  },
  { counted: "actions", table: "SchedulerAction", time: "createdAt", keep: Prisma.empty },
  {
    counted: "notifications",
    table: "AlertNotification",
    time: "createdAt",
    keep: Prisma.sql`AND ("deliveredAt" IS NOT NULL OR "failedAt" IS NOT NULL)`,
  },
];

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
    // One short statement per batch: the oldest `limit` rows of one table, locked rows skipped.
    const deleteBatch = ({ table, time, keep }: PrunedTable) => {
      const [t, c] = [Prisma.raw(`"${table}"`), Prisma.raw(`"${time}"`)];
      return db.$executeRaw`
        DELETE FROM ${t} WHERE id IN (
          SELECT id FROM ${t}
          WHERE ${c} < (${cutoff}::timestamptz AT TIME ZONE 'UTC') ${keep}
          ORDER BY ${c} LIMIT ${limit}
          FOR UPDATE SKIP LOCKED)`;
    };
    for (const pruned of PRUNED_TABLES) {
      for (;;) {
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        const deleted = await deleteBatch(pruned);
        result[pruned.counted] += deleted;
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
