import { continueAsNew, proxyActivities } from "@temporalio/workflow";
import type { BatchCheckResult } from "../activities/batch-status.ts";
import type { Activities } from "../activities/index.ts";
import { drain } from "./drain.ts";
import { type RunLimits, runDeadline } from "./run-limits.ts";
import {
  afterDrain,
  type Continuation,
  describeError,
  historyNearlyFull,
  type RunSummary,
  recordedRun,
  summaryWith,
} from "./run-record.ts";

export interface BatchCreationWorkflowInput extends RunLimits {
  schedulerId: string;
  scheduleId: string;
  minRequests: number;
  maxWaitMs: number;
  maxRequests: number;
  /** Companies listed per page. */
  pageSize: number;
  region?: string | undefined;
  continuation?: Continuation<BatchCreationState> | undefined;
}

export interface BatchStatusWorkflowInput extends RunLimits {
  schedulerId: string;
  scheduleId: string;
  /** Batches listed per page. */
  pageSize: number;
  region?: string | undefined;
  /** A checkBatch silent this long is retried elsewhere (its worker presumably died). */
  heartbeatTimeoutMs?: number | undefined;
  continuation?: Continuation<BatchStatusState> | undefined;
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

export interface BatchCreationState {
  afterId?: string | undefined;
  counts: BatchCreationCounts;
  carried: string[];
}

export interface BatchStatusState {
  afterId?: string | undefined;
  counts: BatchStatusCounts;
  carried: string[];
}

const MAX_REPORTED_ERRORS = 20;

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

/** Keyset paging over ids for the drain: stops listing after a short page. */
function pagedIds(
  state: { afterId?: string | undefined },
  pageSize: number,
  list: (afterId: string | undefined) => Promise<string[]>,
) {
  let listedAll = false;
  return async () => {
    if (listedAll) return [];
    const page = await list(state.afterId);
    if (page.length < pageSize) listedAll = true;
    state.afterId = page.at(-1) ?? state.afterId;
    return page;
  };
}

/** Per company with enough waiting requests (or one waiting too long): claim, upload, create. */
export async function batchCreationWorkflow(
  input: BatchCreationWorkflowInput,
): Promise<RunSummary<BatchCreationCounts>> {
  return recordedRun(
    input,
    input.continuation,
    async (run, previous, tracker) => {
      const state: BatchCreationState = previous ?? {
        counts: { companies: 0, batchesCreated: 0, requestsBatched: 0, errors: [] },
        carried: [],
      };
      const counts = state.counts;
      tracker.counts = counts;
      const noteError = (error: string) => {
        if (counts.errors.length < MAX_REPORTED_ERRORS) counts.errors.push(error);
      };
      const drained = await drain<string>({
        carried: state.carried,
        tracker,
        window: input.window,
        deadline: runDeadline(run, input),
        shouldContinue: () => historyNearlyFull(input),
        nextPage: pagedIds(state, input.pageSize, (afterId) =>
          short.listCompaniesReadyForBatch({
            region: input.region,
            minRequests: input.minRequests,
            maxWaitMs: input.maxWaitMs,
            afterId,
            limit: input.pageSize,
          }),
        ),
        work: async (companyId) => {
          counts.companies += 1;
          const claimed = await short.claimBatch({ companyId, maxRequests: input.maxRequests });
          if (!claimed) return "done";
          try {
            const { openaiBatchId } = await short.submitBatch(claimed.batchId);
            if (openaiBatchId) {
              counts.batchesCreated += 1;
              counts.requestsBatched += claimed.requests;
            } else
              noteError(
                `batch ${claimed.batchId} was rejected by OpenAI; its requests went back to the queue`,
              );
          } catch (error) {
            // The claimed batch stays PENDING; the status run submits it later.
            noteError(`batch ${claimed.batchId}: ${describeError(error)}`);
          }
          return "done";
        },
      });
      return afterDrain(drained, state, counts, () =>
        summaryWith(
          counts.errors.length === 0
            ? "SUCCEEDED"
            : counts.batchesCreated > 0
              ? "PARTIAL"
              : "FAILED",
          counts,
          counts.errors,
        ),
      );
    },
    (next) => continueAsNew<typeof batchCreationWorkflow>({ ...input, continuation: next }),
  );
}

/** Polls every batch in flight once and applies what finished. */
export async function batchStatusWorkflow(
  input: BatchStatusWorkflowInput,
): Promise<RunSummary<BatchStatusCounts>> {
  return recordedRun(
    input,
    input.continuation,
    async (run, previous, tracker) => {
      const { checkBatch } = checkActivities(input.heartbeatTimeoutMs);
      const state: BatchStatusState = previous ?? {
        counts: {
          checked: 0,
          processed: 0,
          failed: 0,
          stillRunning: 0,
          resultsApplied: 0,
          resultsFailed: 0,
          requeued: 0,
          failedForGood: 0,
          errors: [],
        },
        carried: [],
      };
      const counts = state.counts;
      tracker.counts = counts;
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
      const drained = await drain<string>({
        carried: state.carried,
        tracker,
        window: input.window,
        deadline: runDeadline(run, input),
        shouldContinue: () => historyNearlyFull(input),
        nextPage: pagedIds(state, input.pageSize, (afterId) =>
          short.listBatchesToCheck({ region: input.region, afterId, limit: input.pageSize }),
        ),
        work: async (batchId) => {
          try {
            tally(await checkBatch(batchId));
          } catch (error) {
            if (counts.errors.length < MAX_REPORTED_ERRORS) {
              counts.errors.push(`batch ${batchId}: ${describeError(error)}`);
            }
          }
          return "done";
        },
      });
      return afterDrain(drained, state, counts, () =>
        summaryWith(
          counts.errors.length === 0 ? "SUCCEEDED" : counts.checked > 0 ? "PARTIAL" : "FAILED",
          counts,
          counts.errors,
        ),
      );
    },
    (next) => continueAsNew<typeof batchStatusWorkflow>({ ...input, continuation: next }),
  );
}
