import { isSuccessfulOutcome, type RunOutcome } from "../domain/run-outcome.ts";

/**
 * The rules that turn what was read about one scheduler (a SchedulerSnapshot, gathered by
 * control-plane/scheduler-snapshot.ts) into its state: STOPPED, STARTING, RUNNING, PAUSED or
 * ERROR, whether that is healthy, and why. Pure: no I/O and no Temporal or Prisma runtime, so
 * health, metrics, alerts and the admin views share one set of rules and tests can drive every
 * branch with plain values (test/unit/scheduler-state.test.ts).
 */

/** The states of a scheduler, as health, metrics and the admin API report them. */
export const SCHEDULER_STATES = ["STOPPED", "STARTING", "RUNNING", "PAUSED", "ERROR"] as const;
export type SchedulerState = (typeof SCHEDULER_STATES)[number];

export interface PollerView {
  identity: string;
  lastAccessTime: string | null;
}

/** A pause or unpause as Temporal recorded it. */
export interface ScheduleToggle {
  kind: "pause" | "unpause";
  note: string;
  /** The identity of the client that sent it (the Temporal UI sends its user's, the CLI its host's). */
  by: string | null;
  at: Date;
}

export interface ScheduleToggles {
  pause?: ScheduleToggle;
  unpause?: ScheduleToggle;
}

/** A running workflow whose workflow task keeps failing. */
export interface StuckRun {
  workflowId: string;
  attempts: number;
  reason: string;
}

/** One finished run from the run table, newest first in the snapshot. */
export interface RecentRun {
  outcome: RunOutcome | string;
  error: string | null;
  counts: unknown;
  finishedAt: Date | null;
}

/** What Temporal's describe() said about the schedule, as plain facts. */
export interface LiveSchedule {
  paused: boolean;
  note: string;
  createdAt: Date;
  /** The next fire times Temporal computed (two give the interval). */
  nextActionTimes: Date[];
  /** Workflows of this schedule running now. */
  runningActions: number;
  skippedOverlap: number;
  missedCatchupWindow: number;
  /** What differs from the configuration (control-plane/schedule-reconcile.ts), e.g. ["spec"]. */
  drift: string[];
}

export type ScheduleRead =
  | { kind: "found"; schedule: LiveSchedule }
  | { kind: "missing" }
  | { kind: "unreachable"; message: string };

export type StoredRead =
  | {
      kind: "read";
      /** The operator's start/stop (SchedulerSetting), when one was ever made. */
      setting: { enabled: boolean; updatedBy: string | null } | null;
      lastSuccess: Date | null;
      /** The latest finished runs, newest first; at least max(error, partial threshold) when there are. */
      recentRuns: RecentRun[];
    }
  | { kind: "unreachable"; message: string };

/** What waits in PostgreSQL for one pipeline stage (control-plane/backlog.ts). */
export interface StageBacklog {
  waiting: number;
  /** Seconds the oldest waiting item has waited; 0 when nothing waits. */
  oldestAgeSeconds: number;
}

/** Everything the rules look at for one scheduler, read at one moment. */
export interface SchedulerSnapshot {
  /** From configuration: `<TYPE>_ENABLED`, and the task queue its workers poll. */
  enabled: boolean;
  taskQueue: string;
  schedule: ScheduleRead;
  stored: StoredRead;
  /** Workers Temporal saw polling the task queue (empty when it could not be read). */
  pollers: PollerView[];
  toggles: ScheduleToggles;
  stuck: StuckRun[];
  /** The scheduler's stage backlog, when it has a stage and it was read. */
  backlog?: StageBacklog;
}

export interface StateThresholds {
  /** Consecutive failed runs that make a scheduler ERROR. */
  errorThreshold: number;
  /** Consecutive PARTIAL runs that make a scheduler ERROR. */
  partialThreshold: number;
  /** More than this percentage of companies failing in the last run makes it ERROR. */
  failedCompaniesPercent: number;
  /** Dead man's switch: no success for this many schedule intervals makes it ERROR. */
  deadmanIntervals: number;
  /** No worker polling for this long makes it ERROR. */
  workerStaleMs: number;
  /** BACKLOG_LAG_OBJECTIVE: the oldest waiting item older than this makes it ERROR (0: none). */
  backlogLagObjectiveMs?: number;
}

export interface DerivedState {
  status: SchedulerState;
  /** RUNNING, PAUSED, STARTING and operator-STOPPED are healthy; ERROR and a missing schedule are not. */
  healthy: boolean;
  /** Why the scheduler is not RUNNING (or what an operator should know), when there is a reason. */
  reason?: string;
  /** Set when the state could not be read: which source failed. */
  unreachable?: "temporal" | "database";
}

/** Runs Temporal skipped (overlap policy) or missed (outside the catch-up window), if any. */
export function skippedRunsNote(schedule: {
  skippedOverlap: number;
  missedCatchupWindow: number;
}): string | undefined {
  const overlap = schedule.skippedOverlap;
  const missed = schedule.missedCatchupWindow;
  const parts = [
    ...(overlap > 0 ? [`${overlap} run(s) skipped by the overlap policy`] : []),
    ...(missed > 0 ? [`${missed} run(s) missed outside the catch-up window`] : []),
  ];
  return parts.length > 0 ? `Temporal: ${parts.join(", ")}` : undefined;
}

/** The stage's lag objective breach, as a reason, or undefined when within it (or none set). */
export function lagBreach(stage: StageBacklog, objectiveMs: number): string | undefined {
  if (objectiveMs <= 0 || stage.waiting === 0) return undefined;
  if (stage.oldestAgeSeconds * 1000 <= objectiveMs) return undefined;
  return `backlog lag: ${stage.waiting} item(s) waiting, the oldest for ${stage.oldestAgeSeconds} s (objective ${Math.round(objectiveMs / 1000)} s)`;
}

/**
 * A RUNNING or STARTING scheduler whose oldest waiting item is past the lag objective turns
 * ERROR with that reason; a paused or stopped one keeps its state (the operator chose it).
 */
export function withBacklogRule<S extends DerivedState>(
  state: S,
  backlog: StageBacklog,
  objectiveMs: number,
): S {
  const breach = lagBreach(backlog, objectiveMs);
  if (breach && (state.status === "RUNNING" || state.status === "STARTING")) {
    return { ...state, status: "ERROR", healthy: false, reason: breach };
  }
  return state;
}

/** The length of one schedule interval, from the next two fire times Temporal computed. */
export function intervalMs(schedule: { nextActionTimes: Date[] }): number | undefined {
  const [first, second] = schedule.nextActionTimes;
  return first && second ? second.getTime() - first.getTime() : undefined;
}

/** A PARTIAL run's failing share of companies, when its counts say (csv-import). */
function failedCompanies(run: RecentRun): { failed: number; companies: number } | undefined {
  const counts = run.counts as { failed?: unknown; companies?: unknown } | null;
  if (typeof counts?.failed !== "number" || typeof counts.companies !== "number") return undefined;
  return counts.companies > 0 ? { failed: counts.failed, companies: counts.companies } : undefined;
}

/**
 * The state of one scheduler. Combines Temporal's view (does the schedule exist, is it paused,
 * do workers poll its task queue, is a run stuck) with the run table's (did recent runs succeed,
 * when was the last success) and the operator's settings. The first rule that applies wins:
 * database unreachable, schedule missing (STOPPED), Temporal unreachable, paused, stuck run,
 * consecutive failures, consecutive PARTIAL runs, too many companies failing, no worker
 * polling, dead man's switch, no run yet since created or resumed (STARTING), else RUNNING;
 * then the backlog lag objective, when the snapshot has a backlog.
 */
export function deriveState(
  snapshot: SchedulerSnapshot,
  thresholds: StateThresholds,
  now: Date,
): DerivedState {
  const base = baseState(snapshot, thresholds, now);
  return snapshot.backlog
    ? withBacklogRule(base, snapshot.backlog, thresholds.backlogLagObjectiveMs ?? 0)
    : base;
}

function baseState(
  snapshot: SchedulerSnapshot,
  thresholds: StateThresholds,
  now: Date,
): DerivedState {
  const { stored, schedule: read, pollers, toggles, stuck, taskQueue } = snapshot;
  // When PostgreSQL is unreachable the scheduler reports ERROR with the reason, instead of the
  // whole health request failing with a 500.
  if (stored.kind === "unreachable") {
    return {
      status: "ERROR",
      healthy: false,
      unreachable: "database",
      reason: `PostgreSQL: ${stored.message.trim().split("\n").at(-1) ?? "unreachable"}`,
    };
  }
  const { setting, lastSuccess, recentRuns: recent } = stored;

  if (read.kind === "missing") {
    if (!snapshot.enabled) {
      return { status: "STOPPED", healthy: true, reason: "disabled by configuration" };
    }
    if (setting && !setting.enabled) {
      return {
        status: "STOPPED",
        healthy: true,
        reason: `stopped by ${setting.updatedBy ?? "an operator"}`,
      };
    }
    return {
      status: "STOPPED",
      healthy: false,
      reason: "the schedule does not exist (no worker has created it)",
    };
  }
  if (read.kind === "unreachable") {
    return {
      status: "ERROR",
      healthy: false,
      unreachable: "temporal",
      reason: `Temporal: ${read.message}`,
    };
  }
  const schedule = read.schedule;
  const skipped = skippedRunsNote(schedule);
  const notes = [
    ...(schedule.drift.includes("spec")
      ? ["the live schedule spec differs from the configuration (reconcile puts it back)"]
      : []),
    ...(skipped ? [skipped] : []),
  ];
  const explain = (reason?: string) => {
    const all = [...(reason ? [reason] : []), ...notes];
    return all.length > 0 ? { reason: all.join("; ") } : {};
  };
  const error = (reason: string): DerivedState => ({
    status: "ERROR",
    healthy: false,
    ...explain(reason),
  });

  if (schedule.paused) {
    return { status: "PAUSED", healthy: true, ...explain(schedule.note || "paused") };
  }

  const stuckRun = stuck[0];
  if (stuckRun) {
    return error(
      `run ${stuckRun.workflowId} is stuck: its workflow task failed ${stuckRun.attempts} times (${stuckRun.reason})`,
    );
  }

  const failing = recent.slice(0, thresholds.errorThreshold);
  if (
    failing.length >= thresholds.errorThreshold &&
    failing.every((run) => !isSuccessfulOutcome(run.outcome))
  ) {
    const last = failing[0];
    return error(`the last ${failing.length} runs failed: ${last?.error ?? last?.outcome}`);
  }
  // Success means success: a run where some units failed is PARTIAL, and PARTIAL for too long,
  // or with too many companies failing, is an ERROR.
  const partial = recent.slice(0, thresholds.partialThreshold);
  if (
    partial.length >= thresholds.partialThreshold &&
    partial.every((r) => r.outcome === "PARTIAL")
  ) {
    return error(`the last ${partial.length} runs were PARTIAL: ${partial[0]?.error ?? ""}`.trim());
  }
  const lastRun = recent[0];
  let partialNote: string | undefined;
  if (lastRun?.outcome === "PARTIAL") {
    const share = failedCompanies(lastRun);
    if (share && share.failed * 100 > share.companies * thresholds.failedCompaniesPercent) {
      return error(
        `${share.failed} of ${share.companies} companies failed in the last run (more than ${thresholds.failedCompaniesPercent}%): ${lastRun.error ?? ""}`.trim(),
      );
    }
    partialNote =
      `last run PARTIAL${share ? ` (${share.failed} of ${share.companies} companies failed)` : ""}: ${lastRun.error ?? ""}`.trim();
  }

  // The schedule has been active since it was created or last resumed (in our API, the Temporal
  // UI or CLI): health counts from then, so a resume or start raises no false alarm.
  const resumedAt = toggles.unpause?.at;
  const resumed = resumedAt !== undefined && resumedAt > schedule.createdAt;
  const activeSince = resumed ? resumedAt : schedule.createdAt;
  const activeFor = now.getTime() - activeSince.getTime();
  const freshPoll = pollers.some(
    (p) =>
      p.lastAccessTime &&
      now.getTime() - new Date(p.lastAccessTime).getTime() <= thresholds.workerStaleMs,
  );
  if (!freshPoll) {
    if (activeFor > thresholds.workerStaleMs) {
      return error(
        `no worker has polled task queue ${taskQueue} for ${Math.round(thresholds.workerStaleMs / 1000)} s`,
      );
    }
    return {
      status: "STARTING",
      healthy: true,
      ...explain(`waiting for a worker to poll task queue ${taskQueue}`),
    };
  }

  // Dead man's switch: a schedule that should have run N times without a success is broken,
  // even when no run recorded a failure (runs that never start record nothing).
  const interval = intervalMs(schedule);
  const since = lastSuccess && lastSuccess > activeSince ? lastSuccess : activeSince;
  if (
    interval !== undefined &&
    now.getTime() - since.getTime() > interval * thresholds.deadmanIntervals
  ) {
    return error(
      `no successful run for ${thresholds.deadmanIntervals} intervals (since ${since.toISOString()})`,
    );
  }
  const ranSinceActive = lastRun?.finishedAt && lastRun.finishedAt >= activeSince;
  if (!ranSinceActive) {
    const next = schedule.nextActionTimes[0];
    const progress =
      schedule.runningActions > 0
        ? "in progress"
        : `pending${next ? ` (due ${next.toISOString()})` : ""}`;
    return {
      status: "STARTING",
      healthy: true,
      ...explain(
        `first run ${progress} since ${resumed ? "the resume" : "the schedule was created"}`,
      ),
    };
  }
  return { status: "RUNNING", healthy: true, ...explain(partialNote) };
}
