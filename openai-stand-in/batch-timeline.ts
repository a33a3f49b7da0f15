/**
 * How a batch moves validating -> in_progress -> finalizing -> completed (or failed, expired,
 * cancelling -> cancelled) over wall-clock time. Pure: the state at any instant is derived from
 * the creation time, the durations captured at creation, the outcome and the cancel request, so
 * the server keeps no timers and evaluates a batch lazily whenever it is read.
 */

import type { Batch } from "openai/resources/batches";
import type { BatchOutcome, BatchTimings } from "./types.ts";

/** What the timeline needs to know about a batch (a BatchRecord fits). */
export interface BatchSchedule {
  createdAtMs: number;
  /** Captured at creation so later `configure` calls don't rewrite a running batch. */
  timings: BatchTimings;
  outcome: BatchOutcome;
  /** A batch with validation errors fails when validation ends. */
  validationErrors: readonly unknown[];
  /** One entry per line, in execution order; lines run evenly over `in_progress`. */
  results: readonly unknown[];
  cancelRequestedAtMs: number | null;
}

/** A batch's state at one instant, derived from its creation time and durations. */
export interface Timeline {
  status: Batch["status"];
  /** Lines executed so far, counted from the start of the execution order. */
  executed: number;
  inProgressAt: number | null;
  finalizingAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  expiredAt: number | null;
  cancellingAt: number | null;
  cancelledAt: number | null;
}

export const TERMINAL_STATUSES = new Set<Batch["status"]>([
  "completed",
  "failed",
  "expired",
  "cancelled",
]);
export const CANCELLABLE_STATUSES = new Set<Batch["status"]>(["validating", "in_progress"]);

/** The state a batch would be in at `now` if nobody cancelled it. */
function scheduledTimeline(batch: BatchSchedule, now: number): Timeline {
  const { validatingMs, inProgressMs, finalizingMs } = batch.timings;
  const startAt = batch.createdAtMs + validatingMs;
  const runEndAt = startAt + inProgressMs;
  const doneAt = runEndAt + finalizingMs;
  // An expiring batch only gets through half of its lines before the window closes.
  const runnable =
    batch.outcome === "expired" ? Math.floor(batch.results.length / 2) : batch.results.length;
  const base: Timeline = {
    status: "validating",
    executed: 0,
    inProgressAt: null,
    finalizingAt: null,
    completedAt: null,
    failedAt: null,
    expiredAt: null,
    cancellingAt: null,
    cancelledAt: null,
  };
  if (now < startAt) return base;
  if (batch.validationErrors.length > 0 || batch.outcome === "failed") {
    return { ...base, status: "failed", failedAt: startAt };
  }
  const running: Timeline = { ...base, status: "in_progress", inProgressAt: startAt };
  if (now < runEndAt) {
    const share = inProgressMs === 0 ? 1 : (now - startAt) / inProgressMs;
    return { ...running, executed: Math.floor(runnable * share) };
  }
  if (batch.outcome === "expired") {
    // The lines that never ran are reported as batch_expired in the error file.
    return { ...running, status: "expired", expiredAt: runEndAt, executed: runnable };
  }
  const finalizing: Timeline = {
    ...running,
    status: "finalizing",
    finalizingAt: runEndAt,
    executed: runnable,
  };
  if (now < doneAt) return finalizing;
  return { ...finalizing, status: "completed", completedAt: doneAt };
}

export function timelineAt(batch: BatchSchedule, now: number): Timeline {
  const cancelAt = batch.cancelRequestedAtMs;
  if (cancelAt === null) return scheduledTimeline(batch, now);
  // Whatever ran before the cancel request stays; nothing else runs.
  const frozen = scheduledTimeline(batch, cancelAt);
  const cancelledAt = cancelAt + batch.timings.cancellingMs;
  const cancelling: Timeline = { ...frozen, status: "cancelling", cancellingAt: cancelAt };
  return now < cancelledAt ? cancelling : { ...cancelling, status: "cancelled", cancelledAt };
}
