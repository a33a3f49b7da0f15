import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import {
  ActivityFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from "@temporalio/workflow";
import type { Activities } from "../activities/index.ts";
import type { RunOutcome } from "../activities/run-records.ts";
import type { DrainResult } from "./drain.ts";
import { RunTracker, runProgressQuery } from "./progress.ts";

const { recordRunStarted, recordRunFinished, recordRunProgress } = proxyActivities<Activities>({
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
 * Who a scheduled run is, across continue-as-new: the first execution's ids and start time. The
 * run table, health and metrics know the run by these, whatever execution is current.
 */
export interface RunIdentity {
  workflowId: string;
  runId: string;
  /** Workflow time (ms) the first execution started: the run deadline counts from here. */
  startedAt: number;
  /** Executions so far, this one included. */
  executions: number;
  /** Items taken and done by earlier executions (for the progress query; absent in old runs). */
  itemsTaken?: number | undefined;
  itemsDone?: number | undefined;
}

/** What one execution ends with: the run's final summary, or its state for the next execution. */
export type Step<S, T> =
  | { kind: "done"; summary: RunSummary<T> }
  | { kind: "continue"; state: S; progress: T };

/**
 * What a drained execution ends with: its state (with the items it did not get to) for the next
 * execution when it handed over, else the run's summary.
 */
export function afterDrain<I, S extends { carried: I[] }, T>(
  drained: DrainResult<I>,
  state: S,
  counts: T,
  summarise: () => RunSummary<T>,
): Step<S, T> {
  if (drained.end === "continue") {
    return { kind: "continue", state: { ...state, carried: drained.leftover }, progress: counts };
  }
  return { kind: "done", summary: summarise() };
}

/** A summary whose error lists the first few problems, when there are any. */
export function summaryWith<T>(
  outcome: RunSummary<T>["outcome"],
  counts: T,
  problems: readonly string[],
  maxLength = 2000,
): RunSummary<T> {
  return {
    outcome,
    counts,
    ...(problems.length > 0 ? { error: problems.slice(0, 5).join("; ").slice(0, maxLength) } : {}),
  };
}

/** Input a recorded workflow carries from one execution to the next. */
export interface Continuation<S> {
  run: RunIdentity;
  state: S;
}

/**
 * Runs a scheduler's body between two run-table writes, so every run is recorded with its
 * outcome, counts and error whether it ends well, badly or cancelled. A body that returns
 * `continue` hands its state to a fresh execution (`restart`, a typed continueAsNew): the run
 * record stays one row, updated with the progress so far, and is finished by the last execution.
 */
export async function recordedRun<S, T>(
  ids: { schedulerId: string; scheduleId: string },
  continuation: Continuation<S> | undefined,
  body: (run: RunIdentity, state: S | undefined, tracker: RunTracker) => Promise<Step<S, T>>,
  restart: (next: Continuation<S>) => Promise<never>,
): Promise<RunSummary<T>> {
  const info = workflowInfo();
  const run: RunIdentity = continuation
    ? { ...continuation.run, executions: continuation.run.executions + 1 }
    : {
        workflowId: info.workflowId,
        runId: info.runId,
        startedAt: info.startTime.getTime(),
        executions: 1,
      };
  const key = { workflowId: run.workflowId, runId: run.runId };
  const tracker = new RunTracker({ taken: run.itemsTaken, done: run.itemsDone });
  setHandler(runProgressQuery, () => tracker.snapshot(run.executions));
  if (!continuation) {
    await recordRunStarted({
      ...key,
      ...ids,
      scheduledAt: info.typedSearchAttributes.get(scheduledStartTime)?.toISOString(),
      startedAt: new Date(run.startedAt).toISOString(),
    });
  }
  let step: Step<S, T>;
  try {
    step = await body(run, continuation?.state, tracker);
  } catch (error) {
    const cancelled = isCancellation(error);
    // Recording must happen even when the run itself is being cancelled.
    await CancellationScope.nonCancellable(() =>
      recordRunFinished({
        ...key,
        outcome: cancelled ? "CANCELLED" : "FAILED",
        executions: run.executions,
        finishedAt: new Date().toISOString(),
        error: describeError(error),
      }),
    );
    throw error;
  }
  if (step.kind === "continue") {
    await recordRunProgress({ ...key, counts: step.progress, executions: run.executions });
    return restart({
      run: { ...run, itemsTaken: tracker.taken, itemsDone: tracker.done },
      state: step.state,
    });
  }
  await recordRunFinished({
    ...key,
    ...step.summary,
    executions: run.executions,
    finishedAt: new Date().toISOString(),
  });
  return step.summary;
}

/**
 * Hand over to a fresh execution well before Temporal's limits (51,200 events hard, a warning at
 * 10,240): the items still in flight when this says so add about six events each.
 */
export function historyNearlyFull(limits: { window: number; historyBudget?: number | undefined }) {
  const info = workflowInfo();
  const budget = limits.historyBudget ?? HISTORY_EVENT_BUDGET;
  // Items in flight when this says so add up to six events each, and the hand-over its own.
  const handover = patched(HANDOVER_RESERVE_PATCH) ? HANDOVER_EVENTS : 0;
  const reserve = Math.min(limits.window * 6 + handover, Math.floor(budget / 2));
  return info.continueAsNewSuggested || info.historyLength + reserve >= budget;
}

/**
 * Marks executions whose history reserve counts the hand-over's events too; without them an
 * execution could end a few events past its budget when its last items finished one by one.
 */
const HANDOVER_RESERVE_PATCH = "history-reserve-counts-handover";

/** The hand-over: its progress record (an activity, with its workflow task) and continue-as-new. */
const HANDOVER_EVENTS = 12;

/** Events one execution may reach by default: under 10,000 with margin. */
export const HISTORY_EVENT_BUDGET = 9_000;

export function describeError(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}
