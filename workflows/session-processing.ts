import { proxyActivities } from "@temporalio/workflow";
import type { Activities } from "../activities/index.ts";
import { DIRECT_ANALYSIS_MAX_ATTEMPTS } from "../lib/pipeline-limits.ts";
import { runPool } from "./pool.ts";
import { describeError, type RunSummary, recordedRun } from "./run-record.ts";

export interface SessionProcessingWorkflowInput {
  schedulerId: string;
  scheduleId: string;
  /** Sessions queued per run (SESSION_PROCESSING_BATCH_SIZE). */
  batchSize: number;
  mode: "batch" | "direct";
  /** Direct mode: chat completions in flight at once. */
  maxConcurrent: number;
  region?: string | undefined;
}

export interface SessionProcessingCounts {
  mode: "batch" | "direct";
  skippedNoMessages: number;
  queued: number;
  analysed: number;
  failed: number;
  errors: string[];
}

const { queueSessionsForAnalysis } = proxyActivities<Activities>({
  startToCloseTimeout: "2m",
  retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 5 },
});

const { analyseRequestDirect } = proxyActivities<Activities>({
  startToCloseTimeout: "5m",
  retry: {
    initialInterval: "2s",
    backoffCoefficient: 2,
    maximumInterval: "1m",
    maximumAttempts: DIRECT_ANALYSIS_MAX_ATTEMPTS,
  },
});

/**
 * Queues sessions with messages for AI analysis (and skips those without). In batch mode the
 * batch-processing scheduler takes it from there; in direct mode this run analyses them.
 */
export async function sessionProcessingWorkflow(
  input: SessionProcessingWorkflowInput,
): Promise<RunSummary<SessionProcessingCounts>> {
  return recordedRun(input.schedulerId, input.scheduleId, async () => {
    const queued = await queueSessionsForAnalysis({
      limit: input.batchSize,
      region: input.region,
      mode: input.mode,
    });
    const counts: SessionProcessingCounts = {
      mode: input.mode,
      skippedNoMessages: queued.skippedNoMessages,
      queued: queued.queued,
      analysed: 0,
      failed: 0,
      errors: [],
    };
    await runPool(queued.requestIds, input.maxConcurrent, async (requestId) => {
      try {
        const result = await analyseRequestDirect(requestId);
        if (result === "completed") counts.analysed += 1;
        else if (result === "failed") counts.failed += 1;
      } catch (error) {
        counts.failed += 1;
        if (counts.errors.length < 20) counts.errors.push(describeError(error));
      }
    });
    return {
      outcome: counts.failed === 0 ? "SUCCEEDED" : counts.analysed > 0 ? "PARTIAL" : "FAILED",
      counts,
      ...(counts.failed > 0 ? { error: `${counts.failed} analysis request(s) failed` } : {}),
    };
  });
}
