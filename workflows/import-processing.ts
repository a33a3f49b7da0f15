import { proxyActivities } from "@temporalio/workflow";
import type { ImportOutcome, ImportRef } from "../activities/import-processing.ts";
import type { Activities } from "../activities/index.ts";
import { IMPORT_ACTIVITY_MAX_ATTEMPTS } from "../lib/pipeline-limits.ts";
import { runPool } from "./pool.ts";
import { describeError, type RunSummary, recordedRun } from "./run-record.ts";

export interface ImportProcessingWorkflowInput {
  schedulerId: string;
  scheduleId: string;
  /** Imports listed per page. */
  batchSize: number;
  /** processImport activities in flight at once. */
  maxConcurrent: number;
  /** Most imports one run takes on, so a huge backlog is worked off over several runs. */
  maxPerRun: number;
  /** Time budget of one processImport attempt (IMPORT_PROCESSING_TIMEOUT). */
  timeoutMs: number;
  /**
   * A processImport silent this long is retried elsewhere (its worker presumably died), instead
   * of after the whole IMPORT_PROCESSING_TIMEOUT. Absent in runs started before it existed.
   */
  heartbeatTimeoutMs?: number | undefined;
  region?: string | undefined;
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

const MAX_REPORTED_ERRORS = 20;

const { listPendingImports } = proxyActivities<Activities>({
  startToCloseTimeout: "1m",
  retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 5 },
});

/** Creates Sessions from the oldest pending imports; a bad import never blocks the others. */
export async function importProcessingWorkflow(
  input: ImportProcessingWorkflowInput,
): Promise<RunSummary<ImportProcessingCounts>> {
  return recordedRun(input.schedulerId, input.scheduleId, async () => {
    const { processImport } = proxyActivities<Activities>({
      startToCloseTimeout: input.timeoutMs,
      ...(input.heartbeatTimeoutMs ? { heartbeatTimeout: input.heartbeatTimeoutMs } : {}),
      retry: {
        initialInterval: "2s",
        backoffCoefficient: 2,
        maximumInterval: "30s",
        maximumAttempts: IMPORT_ACTIVITY_MAX_ATTEMPTS,
      },
    });
    const counts: ImportProcessingCounts = {
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
    const noteError = (importId: string, error: string) => {
      if (counts.errors.length < MAX_REPORTED_ERRORS) counts.errors.push({ importId, error });
    };

    let after: ImportRef | undefined;
    while (counts.considered < input.maxPerRun) {
      const limit = Math.min(input.batchSize, input.maxPerRun - counts.considered);
      const page = await listPendingImports({ region: input.region, limit, after });
      if (page.length === 0) break;
      after = page.at(-1);
      counts.considered += page.length;

      await runPool(page, input.maxConcurrent, async (ref) => {
        let outcome: ImportOutcome;
        try {
          outcome = await processImport(ref.id);
        } catch (error) {
          // Retries ran out on something unexpected (e.g. the database): the import stays
          // pending for the next run.
          counts.failed += 1;
          noteError(ref.id, describeError(error));
          return;
        }
        if (outcome.status === "skipped") counts.skipped += 1;
        else if (outcome.status === "failed") {
          counts.failed += 1;
          noteError(ref.id, outcome.error);
        } else {
          counts.processed += 1;
          counts.messages += outcome.messages;
          if (outcome.transcript === "completed") counts.transcriptsFetched += 1;
          else if (outcome.transcript === "skipped") counts.transcriptsSkipped += 1;
          else {
            counts.transcriptsFailed += 1;
            if (outcome.error) noteError(ref.id, outcome.error);
          }
        }
      });
      if (page.length < limit) break;
    }

    const troubled = counts.failed + counts.transcriptsFailed;
    return {
      outcome: troubled === 0 ? "SUCCEEDED" : counts.processed > 0 ? "PARTIAL" : "FAILED",
      counts,
      ...(troubled > 0
        ? { error: `${troubled} import(s) had errors; first: ${counts.errors[0]?.error ?? "?"}` }
        : {}),
    };
  });
}
