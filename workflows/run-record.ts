import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import {
  ActivityFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from "@temporalio/workflow";
import type { Activities } from "../activities/index.ts";
import type { RunOutcome } from "../activities/run-records.ts";

const { recordRunStarted, recordRunFinished } = proxyActivities<Activities>({
  startToCloseTimeout: "30s",
  retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 },
});

const scheduledStartTime = defineSearchAttributeKey(
  "TemporalScheduledStartTime",
  SearchAttributeType.DATETIME,
);

export interface RunSummary<T> {
  outcome: Exclude<RunOutcome, "CANCELLED" | "TIMED_OUT">;
  counts: T;
  error?: string;
}

/**
 * Runs a scheduler's body between two run-table writes, so every run is recorded with its
 * outcome, counts and error whether it ends well, badly or cancelled.
 */
export async function recordedRun<T>(
  schedulerId: string,
  scheduleId: string,
  body: () => Promise<RunSummary<T>>,
): Promise<RunSummary<T>> {
  const info = workflowInfo();
  const ids = { workflowId: info.workflowId, runId: info.runId };
  await recordRunStarted({
    ...ids,
    schedulerId,
    scheduleId,
    scheduledAt: info.typedSearchAttributes.get(scheduledStartTime)?.toISOString(),
    startedAt: new Date(info.startTime).toISOString(),
  });
  try {
    const summary = await body();
    await recordRunFinished({ ...ids, ...summary, finishedAt: new Date().toISOString() });
    return summary;
  } catch (error) {
    const cancelled = isCancellation(error);
    // Recording must happen even when the run itself is being cancelled.
    await CancellationScope.nonCancellable(() =>
      recordRunFinished({
        ...ids,
        outcome: cancelled ? "CANCELLED" : "FAILED",
        finishedAt: new Date().toISOString(),
        error: describeError(error),
      }),
    );
    throw error;
  }
}

export function describeError(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}
