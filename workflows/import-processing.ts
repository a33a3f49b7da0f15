import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  patched,
  proxyActivities,
} from "@temporalio/workflow";
import type { ImportOutcome, ImportRef } from "../activities/import-processing.ts";
import type { Activities } from "../activities/index.ts";
import {
  SOURCE_HOST_BUSY,
  TRANSCRIPT_REJECTED,
  TRANSCRIPT_UNAVAILABLE,
} from "../domain/failure-types.ts";
import {
  IMPORT_ACTIVITY_MAX_ATTEMPTS,
  MAX_TRANSCRIPT_ATTEMPTS,
} from "../domain/pipeline-limits.ts";
import { drain, type ItemResult } from "./drain.ts";
import { doublingBackoff } from "./retry-backoff.ts";
import { deferralFor, type RunLimits, runDeadline, upstreamBusy } from "./run-limits.ts";
import {
  afterDrain,
  type Continuation,
  describeError,
  historyNearlyFull,
  type RunSummary,
  recordedRun,
  summaryWith,
} from "./run-record.ts";

export interface ImportProcessingWorkflowInput extends RunLimits {
  schedulerId: string;
  scheduleId: string;
  /** Imports claimed per page (IMPORT_PROCESSING_BATCH_SIZE). */
  batchSize: number;
  /** Runs started before the drain model capped themselves with these; ignored now. */
  maxConcurrent?: number | undefined;
  maxPerRun?: number | undefined;
  /** Time budget of one processImport attempt (IMPORT_PROCESSING_TIMEOUT). */
  timeoutMs: number;
  /**
   * A processImport silent this long is retried elsewhere (its worker presumably died), instead
   * of after the whole IMPORT_PROCESSING_TIMEOUT. Absent in runs started before it existed.
   */
  heartbeatTimeoutMs?: number | undefined;
  /** Wait before a failed attempt's retry (IMPORT_PROCESSING_RETRY_INTERVAL_MS; absent: 2 s). */
  retryIntervalMs?: number | undefined;
  region?: string | undefined;
  continuation?: Continuation<ImportProcessingState> | undefined;
}

export interface ImportProcessingCounts {
  considered: number;
  processed: number;
  transcriptsFetched: number;
  transcriptsSkipped: number;
  transcriptsFailed: number;
  messages: number;
  failed: number;
  skipped: number;
  errors: { importId: string; error: string }[];
}

export interface ImportProcessingState {
  companyCursor?: string | undefined;
  /** Claims made so far in this run: each claim's key is `<workflow id>#<n>`. */
  claims?: number | undefined;
  counts: ImportProcessingCounts;
  carried: ImportRef[];
}

const MAX_REPORTED_ERRORS = 20;

const { claimPendingImports, releaseImportLeases, recordTranscriptFailure } =
  proxyActivities<Activities>({
    startToCloseTimeout: "1m",
    retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 5 },
  });

/**
 * Marks runs that record a transcript fetch's final failure themselves (recordTranscriptFailure)
 * once processImport's retry policy is exhausted; before it, processImport did on what it took
 * for its last attempt. A failure already in the history when this code replays it predates it.
 */
const RECORD_TRANSCRIPT_FAILURE_PATCH = "import-processing-records-transcript-failure";

/** The transcript failure an exhausted (or non-retryable) processImport ended with, if any. */
function transcriptFailureOf(error: unknown): { message: string; permanent: boolean } | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  if (cause.type !== TRANSCRIPT_UNAVAILABLE && cause.type !== TRANSCRIPT_REJECTED) return undefined;
  return { message: cause.message, permanent: cause.type === TRANSCRIPT_REJECTED };
}

/**
 * Creates Sessions from pending imports until none is left or the run deadline passes. Imports
 * are claimed company by company in turn, so a company with a huge backlog shares the fleet with
 * the others; a bad import never blocks the rest.
 */
export async function importProcessingWorkflow(
  input: ImportProcessingWorkflowInput,
): Promise<RunSummary<ImportProcessingCounts>> {
  return recordedRun(
    input,
    input.continuation,
    async (run, previous, tracker) => {
      const { processImport } = proxyActivities<Activities>({
        startToCloseTimeout: input.timeoutMs,
        ...(input.heartbeatTimeoutMs ? { heartbeatTimeout: input.heartbeatTimeoutMs } : {}),
        retry: {
          ...doublingBackoff(input.retryIntervalMs, 2_000, 30_000),
          maximumAttempts: IMPORT_ACTIVITY_MAX_ATTEMPTS,
          nonRetryableErrorTypes: [SOURCE_HOST_BUSY, TRANSCRIPT_REJECTED],
        },
      });
      const state: ImportProcessingState = previous ?? {
        counts: emptyCounts(),
        carried: [],
      };
      const counts = state.counts;
      tracker.counts = counts;
      const noteError = (importId: string, error: string) => {
        if (counts.errors.length < MAX_REPORTED_ERRORS) counts.errors.push({ importId, error });
      };
      // Claimed imports stay reserved for this run for all their attempts, with room to wait.
      const leaseMs = input.timeoutMs * IMPORT_ACTIVITY_MAX_ATTEMPTS + 5 * 60_000;

      const drained = await drain<ImportRef>({
        carried: state.carried,
        tracker,
        window: input.window,
        deadline: runDeadline(run, input),
        shouldContinue: () => historyNearlyFull(input),
        // Rows a csv-import run is still inserting are taken in this run, not the next one.
        upstreamBusy: upstreamBusy("csv-import", input.region),
        nextPage: async () => {
          state.claims = (state.claims ?? 0) + 1;
          const claim = await claimPendingImports({
            region: input.region,
            limit: input.batchSize,
            companyCursor: state.companyCursor,
            leaseMs,
            holder: `${run.workflowId}#${state.claims}`,
          });
          state.companyCursor = claim.companyCursor;
          counts.considered += claim.imports.length;
          return claim.imports;
        },
        work: async (ref): Promise<ItemResult> => {
          let outcome: ImportOutcome;
          try {
            outcome = await processImport(ref.id);
          } catch (error) {
            const deferral = deferralFor(error);
            if (deferral) return deferral;
            // The transcript could not be fetched in this run: what that means for the import
            // (a later run, or failed for good) is recorded here, once.
            const transcript = transcriptFailureOf(error);
            if (transcript && patched(RECORD_TRANSCRIPT_FAILURE_PATCH)) {
              try {
                outcome = await recordTranscriptFailure({
                  importId: ref.id,
                  error: transcript.message,
                  permanent: transcript.permanent,
                  maxRuns: MAX_TRANSCRIPT_ATTEMPTS,
                });
              } catch (recordError) {
                counts.failed += 1;
                noteError(ref.id, describeError(recordError));
                return "done";
              }
              tally(counts, outcome, noteError);
              return "done";
            }
            // Retries ran out on something unexpected (e.g. the database): the import stays
            // pending for a later run (its processing attempts are counted on the row).
            counts.failed += 1;
            noteError(ref.id, describeError(error));
            return "done";
          }
          tally(counts, outcome, noteError);
          return "done";
        },
      });

      if (drained.end !== "continue") await releaseImportLeases({ holder: run.workflowId });
      const troubled = counts.failed + counts.transcriptsFailed;
      return afterDrain(drained, state, counts, () =>
        summaryWith(
          troubled === 0 ? "SUCCEEDED" : counts.processed > 0 ? "PARTIAL" : "FAILED",
          counts,
          troubled > 0
            ? [`${troubled} import(s) had errors; first: ${counts.errors[0]?.error ?? "?"}`]
            : [],
        ),
      );
    },
    (next) => continueAsNew<typeof importProcessingWorkflow>({ ...input, continuation: next }),
  );
}

function emptyCounts(): ImportProcessingCounts {
  return {
    considered: 0,
    processed: 0,
    transcriptsFetched: 0,
    transcriptsSkipped: 0,
    transcriptsFailed: 0,
    messages: 0,
    failed: 0,
    skipped: 0,
    errors: [],
  };
}

function tally(
  counts: ImportProcessingCounts,
  outcome: ImportOutcome,
  noteError: (importId: string, error: string) => void,
): void {
  if (outcome.status === "skipped") counts.skipped += 1;
  else if (outcome.status === "failed") {
    counts.failed += 1;
    noteError(outcome.importId, outcome.error);
  } else {
    counts.processed += 1;
    counts.messages += outcome.messages;
    if (outcome.transcript === "completed") counts.transcriptsFetched += 1;
    else if (outcome.transcript === "skipped") counts.transcriptsSkipped += 1;
    else {
      counts.transcriptsFailed += 1;
      if (outcome.error) noteError(outcome.importId, outcome.error);
    }
  }
}
