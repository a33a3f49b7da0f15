import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
} from "@temporalio/workflow";
import type { AppliedResult } from "../activities/analysis-results.ts";
import type { Activities } from "../activities/index.ts";
import { ANALYSIS_REJECTED } from "../domain/failure-types.ts";
import { DIRECT_ANALYSIS_MAX_ATTEMPTS } from "../domain/pipeline-limits.ts";
import { batched } from "./batcher.ts";
import { drain } from "./drain.ts";
import { doublingBackoff } from "./retry-backoff.ts";
import { type RunLimits, runDeadline, upstreamBusy } from "./run-limits.ts";
import {
  afterDrain,
  type Continuation,
  describeError,
  historyNearlyFull,
  type RunSummary,
  recordedRun,
  summaryWith,
} from "./run-record.ts";

export interface SessionProcessingWorkflowInput extends RunLimits {
  schedulerId: string;
  scheduleId: string;
  /** Sessions claimed per page (SESSION_PROCESSING_BATCH_SIZE). */
  batchSize: number;
  mode: "batch" | "direct";
  /** Runs started before the drain model bounded their analyses with this; ignored now. */
  maxConcurrent?: number | undefined;
  /**
   * Direct mode: the task queue of the model calls, whose workers enforce the global OpenAI
   * request rate. Absent in runs started before it existed (the workflow's own queue).
   */
  analysisTaskQueue?: string | undefined;
  /** Direct mode: wait before a failed model call's retry (ANALYSIS_RETRY_INTERVAL_MS; absent: 2 s). */
  analysisRetryIntervalMs?: number | undefined;
  /**
   * A direct request still in progress this long after it was claimed is adopted by the next run
   * (adoptStrandedRequests). Absent in runs started before it: none are adopted.
   */
  strandedAfterMs?: number | undefined;
  region?: string | undefined;
  continuation?: Continuation<SessionProcessingState> | undefined;
}

export interface SessionProcessingCounts {
  mode: "batch" | "direct";
  skippedNoMessages: number;
  queued: number;
  analysed: number;
  failed: number;
  /** Requests no earlier run would finish, taken over by this run (absent in older runs). */
  adopted?: number | undefined;
  errors: string[];
}

export interface SessionProcessingState {
  counts: SessionProcessingCounts;
  /** Direct mode: requests claimed but not analysed when the execution handed over. */
  carried: string[];
}

const { queueSessionsForAnalysis } = proxyActivities<Activities>({
  startToCloseTimeout: "2m",
  retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 5 },
});

/**
 * Marks executions that analyse in two steps (requestAnalysis, then applyStoredAnalysis) and
 * record a final model failure themselves (recordAnalysisFailure). Executions started before it
 * replay with the one-step analyseRequestDirect they scheduled.
 */
export const TWO_STEP_ANALYSIS_PATCH = "two-step-direct-analysis";

/**
 * Marks executions that apply the stored answers of model calls that ended together as one
 * activity (applyStoredAnalyses, gathered by `batched`); executions started before it replay
 * with one applyStoredAnalysis per request.
 */
export const BATCHED_APPLY_PATCH = "batched-apply-stored-analyses";

/** Marks executions that first adopt the requests no earlier run will finish. */
export const ADOPT_STRANDED_PATCH = "adopt-stranded-analysis-requests";

/** Most stranded requests one run adopts; any others wait for the next run. */
const MAX_ADOPTED = 1_000;

/** Most stored answers one applyStoredAnalyses applies (one transaction). */
const MAX_APPLY_BATCH = 500;

// Database-only steps: cheap to repeat, so they get more room than the paid model call.
const { applyStoredAnalysis, applyStoredAnalyses, recordAnalysisFailure, adoptStrandedRequests } =
  proxyActivities<Activities>({
    startToCloseTimeout: "2m",
    retry: {
      initialInterval: "1s",
      backoffCoefficient: 2,
      maximumInterval: "1m",
      maximumAttempts: 10,
    },
  });

/** Why a model call failed for good, as recorded on the request. */
function analysisFailureReason(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.message) return cause.message;
  return `OpenAI request failed: ${describeError(error)}`;
}

/**
 * Queues sessions with messages for AI analysis (and skips those without) until none is left or
 * the run deadline passes. In batch mode the batch-processing scheduler takes it from there; in
 * direct mode this run analyses them, through a sliding window of model calls.
 */
export async function sessionProcessingWorkflow(
  input: SessionProcessingWorkflowInput,
): Promise<RunSummary<SessionProcessingCounts>> {
  return recordedRun(
    input,
    input.continuation,
    async (run, previous, tracker) => {
      // The model call: on the rate-limited analysis queue, its retries the only ones it gets.
      const { analyseRequestDirect, requestAnalysis } = proxyActivities<Activities>({
        ...(input.analysisTaskQueue ? { taskQueue: input.analysisTaskQueue } : {}),
        startToCloseTimeout: "5m",
        retry: {
          ...doublingBackoff(input.analysisRetryIntervalMs, 2_000, 60_000),
          maximumAttempts: DIRECT_ANALYSIS_MAX_ATTEMPTS,
          nonRetryableErrorTypes: [ANALYSIS_REJECTED],
        },
      });
      const state: SessionProcessingState = previous ?? {
        counts: {
          mode: input.mode,
          skippedNoMessages: 0,
          queued: 0,
          analysed: 0,
          failed: 0,
          errors: [],
        },
        carried: [],
      };
      const counts = state.counts;
      tracker.counts = counts;
      // Decided once per execution, before its first analysis: an execution never mixes them.
      const twoStep = input.mode === "direct" && patched(TWO_STEP_ANALYSIS_PATCH);
      const applyInBatches = twoStep && patched(BATCHED_APPLY_PATCH);
      const noteError = (message: string) => {
        if (counts.errors.length < 20) counts.errors.push(message);
      };
      // The answers stored by model calls that ended together, applied by one activity and
      // counted here (a batch that fails for good fails each of its requests).
      const applyTogether = batched(
        async (requestIds: string[]) => {
          try {
            const applied = await applyStoredAnalyses(requestIds);
            counts.analysed += applied.completed;
            counts.failed += applied.failed + applied.missing.length;
            if (applied.missing.length > 0)
              noteError(`${applied.missing.length} request(s) had no stored answer to apply`);
          } catch (error) {
            if (isCancellation(error)) throw error;
            counts.failed += requestIds.length;
            noteError(describeError(error));
          }
        },
        Math.max(1, Math.min(input.window, MAX_APPLY_BATCH)),
      );
      /**
       * One request: the model's answer stored (no second call if one is), then applied. When
       * the call fails for good, the request is failed with the reason here, once.
       */
      const analyse = async (requestId: string): Promise<AppliedResult | "counted"> => {
        if (!twoStep) return analyseRequestDirect(requestId);
        try {
          await requestAnalysis(requestId);
        } catch (error) {
          if (isCancellation(error)) throw error;
          return recordAnalysisFailure({ requestId, error: analysisFailureReason(error) });
        }
        if (!applyInBatches) return applyStoredAnalysis(requestId);
        await applyTogether(requestId);
        return "counted";
      };
      // Requests whose run ended without finishing them (terminated, or the database away for
      // longer than the apply's retries): stored answers applied together (no model call),
      // the rest analysed in this run (direct mode; batch mode requeued them), and those
      // adopted too often failed for good.
      if (!previous && input.strandedAfterMs !== undefined && patched(ADOPT_STRANDED_PATCH)) {
        try {
          const adopted = await adoptStrandedRequests({
            olderThanMs: input.strandedAfterMs,
            limit: MAX_ADOPTED,
            mode: input.mode,
            region: input.region,
          });
          counts.adopted =
            adopted.answered.length +
            adopted.toAnalyse.length +
            adopted.requeued +
            adopted.exhausted.length;
          state.carried.push(...adopted.toAnalyse);
          await Promise.all([
            ...adopted.answered.map((requestId) => applyTogether(requestId)),
            ...adopted.exhausted.map(async (requestId) => {
              const result = await recordAnalysisFailure({
                requestId,
                error: "no run finished this request; gave up after AI_MAX_RETRIES adoptions",
              });
              if (result === "failed") counts.failed += 1;
            }),
          ]);
        } catch (error) {
          // The run's own work goes on; what was not done is found again by a later run.
          if (isCancellation(error)) throw error;
          noteError(`adopting stranded requests: ${describeError(error)}`);
        }
      }
      const claimPage = async () => {
        const queued = await queueSessionsForAnalysis({
          limit: input.batchSize,
          region: input.region,
          mode: input.mode,
        });
        counts.skippedNoMessages += queued.skippedNoMessages;
        counts.queued += queued.queued;
        return queued;
      };

      const drained = await drain<string>({
        carried: state.carried,
        tracker,
        window: input.window,
        deadline: runDeadline(run, input),
        shouldContinue: () => historyNearlyFull(input),
        // Sessions an import-processing run is still creating are taken in this run.
        upstreamBusy: upstreamBusy("import-processing", input.region),
        nextPage: async () => {
          // Batch mode has nothing to run here: claim pages until the queue is drained.
          for (;;) {
            const queued = await claimPage();
            if (input.mode === "direct" || queued.queued + queued.skippedNoMessages === 0) {
              return queued.requestIds;
            }
            if (Date.now() >= runDeadline(run, input) || historyNearlyFull(input)) {
              return [];
            }
          }
        },
        work: async (requestId) => {
          try {
            const result = await analyse(requestId);
            if (result === "completed") counts.analysed += 1;
            else if (result === "failed") counts.failed += 1;
          } catch (error) {
            counts.failed += 1;
            noteError(describeError(error));
          }
          return "done";
        },
      });

      return afterDrain(drained, state, counts, () =>
        summaryWith(
          counts.failed === 0 ? "SUCCEEDED" : counts.analysed > 0 ? "PARTIAL" : "FAILED",
          counts,
          counts.failed > 0 ? [`${counts.failed} analysis request(s) failed`] : [],
        ),
      );
    },
    (next) => continueAsNew<typeof sessionProcessingWorkflow>({ ...input, continuation: next }),
  );
}
