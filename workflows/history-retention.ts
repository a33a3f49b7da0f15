import { continueAsNew, proxyActivities } from "@temporalio/workflow";
import type { PruneHistoryResult } from "../activities/history-retention.ts";
import type { Activities } from "../activities/index.ts";
import { type RunSummary, recordedRun } from "./run-record.ts";

export interface HistoryRetentionWorkflowInput {
  schedulerId: string;
  scheduleId: string;
  /** History older than this many days is deleted (SCHEDULER_HISTORY_RETENTION_DAYS, >= 1). */
  retentionDays: number;
  /** Rows per DELETE statement (SCHEDULER_HISTORY_RETENTION_BATCH_SIZE). */
  batchSize: number;
  /** The prune activity heartbeats after every batch; silent this long, it is retried. */
  heartbeatTimeoutMs: number;
}

export interface HistoryRetentionCounts extends PruneHistoryResult {
  olderThan: string;
}

const DAY_MS = 86_400_000;

/**
 * The platform's own daily maintenance: prunes run and action history older than the retention
 * period (activities/history-retention.ts). Recorded in the run table like every run.
 */
export async function historyRetentionWorkflow(
  input: HistoryRetentionWorkflowInput,
): Promise<RunSummary<HistoryRetentionCounts>> {
  const { pruneHistory } = proxyActivities<Activities>({
    startToCloseTimeout: "1h",
    heartbeatTimeout: input.heartbeatTimeoutMs,
    retry: {
      initialInterval: "10s",
      backoffCoefficient: 2,
      maximumInterval: "5m",
      maximumAttempts: 5,
    },
  });
  return recordedRun(
    input,
    undefined,
    async () => {
      // Workflow time: the same cut-off on replay and for every attempt of the activity.
      const olderThan = new Date(Date.now() - input.retentionDays * DAY_MS).toISOString();
      const pruned = await pruneHistory({ olderThan, batchSize: input.batchSize });
      return { kind: "done", summary: { outcome: "SUCCEEDED", counts: { olderThan, ...pruned } } };
    },
    // One activity per run: it never needs to hand over to a new execution.
    () => continueAsNew<typeof historyRetentionWorkflow>(input),
  );
}
