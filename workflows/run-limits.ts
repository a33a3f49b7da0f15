import { ActivityFailure, ApplicationFailure } from "@temporalio/workflow";
import { SOURCE_HOST_BUSY } from "../lib/pipeline-limits.ts";
import type { ItemResult } from "./drain.ts";
import type { RunIdentity } from "./run-record.ts";

/** How far one scheduled run goes: shared by every draining workflow's input. */
export interface RunLimits {
  /** No new work is taken this long after the run started (about one schedule interval). */
  deadlineMs: number;
  /** Most activities of this run in flight at once. Workers' slots set the real pace. */
  window: number;
  /** History events after which the execution continues as new (absent: 9,000). */
  historyBudget?: number | undefined;
}

export function runDeadline(run: RunIdentity, limits: RunLimits): number {
  return run.startedAt + limits.deadlineMs;
}

/** How long an item whose host was busy waits before it is tried again in the same run. */
const HOST_BUSY_RETRY_MS = 5_000;

/** An item whose source host is busy is tried again later in the run, not failed. */
export function deferralFor(error: unknown): Exclude<ItemResult, "done"> | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.type === SOURCE_HOST_BUSY) {
    return { deferMs: HOST_BUSY_RETRY_MS };
  }
  return undefined;
}
