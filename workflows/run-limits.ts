import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  patched,
  proxyActivities,
} from "@temporalio/workflow";
import type { Activities } from "../activities/index.ts";
import { SOURCE_HOST_BUSY } from "../domain/failure-types.ts";
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

const { upstreamRunInProgress } = proxyActivities<Activities>({
  startToCloseTimeout: "30s",
  retry: { initialInterval: "1s", maximumInterval: "5s", maximumAttempts: 3 },
});

/** Marks executions that wait for their upstream stage; replays of older ones never ask. */
export const UPSTREAM_WAIT_PATCH = "wait-for-upstream-stage";

/**
 * The drain's `upstreamBusy` for a stage fed by `upstream` (a scheduler type): true while a run
 * of that stage in the same region is in progress. When the question cannot be answered, the
 * run ends as it would have without it.
 */
export function upstreamBusy(upstream: string, region: string | undefined) {
  return async (): Promise<boolean> => {
    if (!patched(UPSTREAM_WAIT_PATCH)) return false;
    try {
      return await upstreamRunInProgress({ scheduler: upstream, region });
    } catch (error) {
      if (isCancellation(error)) throw error;
      return false;
    }
  };
}
