import { proxyActivities } from "@temporalio/workflow";
import type { BatchCheckResult } from "../activities/batch-processing.ts";
import type { Activities } from "../activities/index.ts";
import { runPool } from "./pool.ts";
import { describeError, type RunSummary, recordedRun } from "./run-record.ts";

export interface BatchCreationWorkflowInput {
  schedulerId: string;
  scheduleId: string;
  minRequests: number;
  maxWaitMs: number;
  maxRequests: number;
  region?: string | undefined;
}

export interface BatchStatusWorkflowInput {
  schedulerId: string;
  scheduleId: string;
  region?: string | undefined;
  /** A checkBatch silent this long is retried elsewhere (its worker presumably died). */
  heartbeatTimeoutMs?: number | undefined;
}

export interface BatchCreationCounts {
  companies: number;
  batchesCreated: number;
  requestsBatched: number;
  errors: string[];
}

export interface BatchStatusCounts {
  checked: number;
  processed: number;
  failed: number;
  stillRunning: number;
  resultsApplied: number;
  resultsFailed: number;
  requeued: number;
  failedForGood: number;
  errors: string[];
}

const short = proxyActivities<Activities>({
  startToCloseTimeout: "2m",
  retry: {
    initialInterval: "2s",
    backoffCoefficient: 2,
    maximumInterval: "1m",
    maximumAttempts: 5,
  },
});

// Applying a large completed batch takes a while; it heartbeats its progress. Runs started
// before the heartbeat timeout was configurable keep the old two minutes.
function checkActivities(heartbeatTimeoutMs: number | undefined) {
  return proxyActivities<Activities>({
    startToCloseTimeout: "30m",
    heartbeatTimeout: heartbeatTimeoutMs ?? "2m",
    retry: {
      initialInterval: "5s",
      backoffCoefficient: 2,
      maximumInterval: "2m",
      maximumAttempts: 5,
    },
  });
}

/** Per company with enough waiting requests (or one waiting too long): claim, upload, create. */
export async function batchCreationWorkflow(
  input: BatchCreationWorkflowInput,
): Promise<RunSummary<BatchCreationCounts>> {
  return recordedRun(input.schedulerId, input.scheduleId, async () => {
    const companies = await short.listCompaniesReadyForBatch({
      region: input.region,
      minRequests: input.minRequests,
      maxWaitMs: input.maxWaitMs,
    });
    const counts: BatchCreationCounts = {
      companies: companies.length,
      batchesCreated: 0,
      requestsBatched: 0,
      errors: [],
    };
    for (const companyId of companies) {
      const claimed = await short.claimBatch({ companyId, maxRequests: input.maxRequests });
      if (!claimed) continue;
      try {
        const { openaiBatchId } = await short.submitBatch(claimed.batchId);
        if (openaiBatchId) {
          counts.batchesCreated += 1;
          counts.requestsBatched += claimed.requests;
        } else
          counts.errors.push(
            `batch ${claimed.batchId} was rejected by OpenAI; its requests went back to the queue`,
          );
      } catch (error) {
        // The claimed batch stays PENDING; the status run submits it later.
        counts.errors.push(`batch ${claimed.batchId}: ${describeError(error)}`);
      }
    }
    return {
      outcome:
        counts.errors.length === 0 ? "SUCCEEDED" : counts.batchesCreated > 0 ? "PARTIAL" : "FAILED",
      counts,
      ...(counts.errors.length > 0 ? { error: counts.errors.slice(0, 5).join("; ") } : {}),
    };
  });
}

/** Polls every batch in flight once and applies what finished. */
export async function batchStatusWorkflow(
  input: BatchStatusWorkflowInput,
): Promise<RunSummary<BatchStatusCounts>> {
  return recordedRun(input.schedulerId, input.scheduleId, async () => {
    const { checkBatch } = checkActivities(input.heartbeatTimeoutMs);
    const batchIds = await short.listBatchesToCheck({ region: input.region });
    const counts: BatchStatusCounts = {
      checked: 0,
      processed: 0,
      failed: 0,
      stillRunning: 0,
      resultsApplied: 0,
      resultsFailed: 0,
      requeued: 0,
      failedForGood: 0,
      errors: [],
    };
    const tally = (result: BatchCheckResult) => {
      counts.checked += 1;
      if (result.status === "PROCESSED") counts.processed += 1;
      else if (result.status === "FAILED" || result.status === "CANCELLED") counts.failed += 1;
      else counts.stillRunning += 1;
      counts.resultsApplied += result.applied ?? 0;
      counts.resultsFailed += result.failed ?? 0;
      counts.requeued += result.requeued ?? 0;
      counts.failedForGood += result.failedForGood ?? 0;
    };
    await runPool(batchIds, 3, async (batchId) => {
      try {
        tally(await checkBatch(batchId));
      } catch (error) {
        counts.errors.push(`batch ${batchId}: ${describeError(error)}`);
      }
    });
    return {
      outcome: counts.errors.length === 0 ? "SUCCEEDED" : counts.checked > 0 ? "PARTIAL" : "FAILED",
      counts,
      ...(counts.errors.length > 0 ? { error: counts.errors.slice(0, 5).join("; ") } : {}),
    };
  });
}
