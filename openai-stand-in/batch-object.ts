/**
 * A stored batch (BatchRecord: its input, captured timings and outcome, every line's answer in
 * execution order, the cancel request and the files written when it settled) and how it looks
 * on the wire at one point of its timeline: status, timestamps, request counts and token usage
 * of the lines run so far, errors when failed.
 */

import type { BatchError, BatchRequestCounts, BatchUsage } from "openai/resources/batches";
import { isSuccess, type LineResult } from "./batch-jsonl.ts";
import type { Timeline } from "./batch-timeline.ts";
import { seconds } from "./random.ts";
import type { BatchObject, BatchOutcome, BatchTimings } from "./types.ts";

const COMPLETION_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface BatchRecord {
  id: string;
  createdAtMs: number;
  inputFileId: string;
  endpoint: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  /** Captured at creation so later `configure` calls don't rewrite a running batch. */
  timings: BatchTimings;
  outcome: BatchOutcome;
  validationErrors: BatchError[];
  /** Every line's answer, in execution order (a deterministic shuffle of the input). */
  results: LineResult[];
  cancelRequestedAtMs: number | null;
  settled: { outputFileId: string | null; errorFileId: string | null } | null;
}

function requestCounts(batch: BatchRecord, timeline: Timeline): BatchRequestCounts {
  if (timeline.inProgressAt === null) return { total: 0, completed: 0, failed: 0 };
  const executed = batch.results.slice(0, timeline.executed);
  const completed = executed.filter(isSuccess).length;
  const notRun = timeline.status === "expired" ? batch.results.length - executed.length : 0;
  return { total: batch.results.length, completed, failed: executed.length - completed + notRun };
}

function batchUsage(batch: BatchRecord, timeline: Timeline): BatchUsage {
  let input = 0;
  let output = 0;
  for (const result of batch.results.slice(0, timeline.executed)) {
    if (!isSuccess(result)) continue;
    input += result.body.usage?.prompt_tokens ?? 0;
    output += result.body.usage?.completion_tokens ?? 0;
  }
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + output,
  };
}

function toSeconds(ms: number | null): number | null {
  return ms === null ? null : seconds(ms);
}

export function batchObject(batch: BatchRecord, timeline: Timeline): BatchObject {
  const failed = timeline.status === "failed";
  const errors = batch.validationErrors.length > 0 ? batch.validationErrors : OUTCOME_FAILED_ERRORS;
  const expiresAtMs =
    batch.outcome === "expired"
      ? batch.createdAtMs + batch.timings.validatingMs + batch.timings.inProgressMs
      : batch.createdAtMs + COMPLETION_WINDOW_MS;
  return {
    id: batch.id,
    object: "batch",
    endpoint: batch.endpoint,
    errors: failed ? { object: "list", data: errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: timeline.status,
    output_file_id: batch.settled?.outputFileId ?? null,
    error_file_id: batch.settled?.errorFileId ?? null,
    created_at: seconds(batch.createdAtMs),
    in_progress_at: toSeconds(timeline.inProgressAt),
    expires_at: seconds(expiresAtMs),
    finalizing_at: toSeconds(timeline.finalizingAt),
    completed_at: toSeconds(timeline.completedAt),
    failed_at: toSeconds(timeline.failedAt),
    expired_at: toSeconds(timeline.expiredAt),
    cancelling_at: toSeconds(timeline.cancellingAt),
    cancelled_at: toSeconds(timeline.cancelledAt),
    request_counts: requestCounts(batch, timeline),
    usage: batchUsage(batch, timeline),
    metadata: batch.metadata,
  };
}

const OUTCOME_FAILED_ERRORS: BatchError[] = [
  {
    code: "batch_failed",
    message: "The batch failed (simulated by the OpenAI stand-in).",
    param: null,
    line: null,
  },
];
