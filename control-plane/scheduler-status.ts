import { type Client, type ScheduleDescription, ScheduleNotFoundError } from "@temporalio/client";
import proto from "@temporalio/proto";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import {
  latestToggles,
  type ScheduleToggle,
  type StuckRun,
  stuckRun,
  within,
} from "./schedule-facts.ts";
import { scheduleDrift } from "./schedule-reconcile.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";

export { type HealthReport, healthReport } from "./health-report.ts";

// The package is CommonJS: Node's ESM loader (tsx in production) sees only its default export.
const { temporal } = proto;

export type SchedulerState = "STOPPED" | "STARTING" | "RUNNING" | "PAUSED" | "ERROR";

export interface PollerView {
  identity: string;
  lastAccessTime: string | null;
}

export interface SchedulerStatus {
  id: string;
  scheduleId: string;
  status: SchedulerState;
  /** RUNNING, PAUSED and operator-STOPPED are healthy; ERROR and a missing schedule are not. */
  healthy: boolean;
  lastSuccess: Date | null;
  /** Why the scheduler is not RUNNING, for operators. */
  reason?: string;
  schedule?: ScheduleDescription;
  /** Workers seen polling this scheduler's task queue recently. */
  pollers: PollerView[];
  /** Set when the state could not be read: which source failed. */
  unreachable?: "temporal" | "database";
  /** `<TYPE>_CRITICAL`: whether this scheduler's ERROR makes the whole health answer unhealthy. */
  critical: boolean;
  /** The latest pause and resume as Temporal recorded them (who, when), where it knows. */
  toggles?: { pause?: ScheduleToggle; unpause?: ScheduleToggle };
  /** What differs between the live schedule and the configuration (reconcile puts it back). */
  drift?: string[];
  /** What waits for this scheduler in PostgreSQL (control-plane/backlog.ts), when it was read. */
  backlog?: SchedulerBacklog;
}

export interface SchedulerBacklog {
  waiting: number;
  oldestAgeSeconds: number;
  /** BACKLOG_LAG_OBJECTIVE_SECONDS (0: none). */
  lagObjectiveSeconds: number;
}

export interface StatusOptions {
  client: Client;
  db: Database;
  namespace: string;
  /** Consecutive failed runs that make a scheduler ERROR. */
  errorThreshold: number;
  /** Dead man's switch: no success for this many schedule intervals makes it ERROR. */
  deadmanIntervals: number;
  /** No worker polling for this long makes it ERROR. */
  workerStaleMs: number;
  /** Consecutive PARTIAL runs that make a scheduler ERROR. */
  partialThreshold: number;
  /** More than this percentage of companies failing in the last run makes it ERROR. */
  failedCompaniesPercent: number;
  now?: Date;
}

export const SUCCESSFUL_OUTCOMES = ["SUCCEEDED", "PARTIAL"] as const;

/** Status options as configured for this deployment. */
export function statusOptionsFor(config: Config, client: Client, db: Database): StatusOptions {
  return {
    client,
    db,
    namespace: config.temporal.namespace,
    errorThreshold: config.scheduler.errorThreshold,
    deadmanIntervals: config.scheduler.deadmanIntervals,
    workerStaleMs: config.scheduler.workerStaleMs,
    partialThreshold: config.scheduler.partialThreshold,
    failedCompaniesPercent: config.scheduler.failedCompaniesPercent,
  };
}

/** Workers polling a task queue (workflow or activity side) as Temporal last saw them. */
export async function taskQueuePollers(
  client: Client,
  namespace: string,
  taskQueue: string,
): Promise<PollerView[]> {
  const types = [
    temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  ];
  const seen = new Map<string, PollerView>();
  for (const taskQueueType of types) {
    const response = await client.workflowService.describeTaskQueue({
      namespace,
      taskQueue: {
        name: taskQueue,
        kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL,
      },
      taskQueueType,
    });
    for (const poller of response.pollers ?? []) {
      const seconds = Number(poller.lastAccessTime?.seconds ?? 0);
      const at = seconds > 0 ? new Date(seconds * 1000).toISOString() : null;
      const previous = seen.get(poller.identity ?? "");
      if (!previous || (at && (!previous.lastAccessTime || at > previous.lastAccessTime))) {
        seen.set(poller.identity ?? "", { identity: poller.identity ?? "", lastAccessTime: at });
      }
    }
  }
  return [...seen.values()];
}

/** The length of one schedule interval, from the next two fire times Temporal computed. */
function intervalMs(schedule: ScheduleDescription): number | undefined {
  const [first, second] = schedule.info.nextActionTimes;
  return first && second ? second.getTime() - first.getTime() : undefined;
}

/** Health must answer within 2 s: each Temporal call gets this long. */
export const TEMPORAL_STATUS_TIMEOUT_MS = 1_500;

interface TemporalFacts {
  schedule: ScheduleDescription | Error;
  pollers: PollerView[];
  toggles: { pause?: ScheduleToggle; unpause?: ScheduleToggle };
  stuck: StuckRun[];
}

/** Everything Temporal says about one schedule, or the error when it does not answer in time. */
async function temporalFacts(
  options: StatusOptions,
  def: SchedulerDefinition,
): Promise<TemporalFacts> {
  const { client, namespace } = options;
  const deadline = Date.now() + TEMPORAL_STATUS_TIMEOUT_MS;
  const call = <T>(what: string, fn: () => Promise<T>) =>
    within(client.withDeadline(deadline, fn), TEMPORAL_STATUS_TIMEOUT_MS, what);
  const schedule = await call("Temporal", () =>
    client.schedule.getHandle(def.scheduleId).describe(),
  ).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
  if (schedule instanceof Error) return { schedule, pollers: [], toggles: {}, stuck: [] };
  const running = schedule.info.runningActions.map((a) => a.workflow.workflowId);
  const [pollers, toggles, stuck] = await Promise.all([
    call("Temporal", () => taskQueuePollers(client, namespace, def.taskQueue)).catch(
      () => [] as PollerView[],
    ),
    call("Temporal", () => latestToggles(client, namespace, def.scheduleId)).catch(() => ({})),
    Promise.all(
      running.map((id) =>
        call("Temporal", () => stuckRun(client, namespace, id)).catch(() => undefined),
      ),
    ).then((runs) => runs.filter((r): r is StuckRun => r !== undefined)),
  ]);
  return { schedule, pollers, toggles, stuck };
}

/** Runs Temporal skipped (overlap policy) or missed (outside the catch-up window), if any. */
export function skippedRuns(schedule: ScheduleDescription): string | undefined {
  const overlap = schedule.info.numActionsSkippedOverlap;
  const missed = schedule.info.numActionsMissedCatchupWindow;
  const parts = [
    ...(overlap > 0 ? [`${overlap} run(s) skipped by the overlap policy`] : []),
    ...(missed > 0 ? [`${missed} run(s) missed outside the catch-up window`] : []),
  ];
  return parts.length > 0 ? `Temporal: ${parts.join(", ")}` : undefined;
}

interface RecentRun {
  outcome: string;
  error: string | null;
  counts: unknown;
  finishedAt: Date | null;
}

/** A PARTIAL run's failing share of companies, when its counts say (csv-import). */
function failedCompanies(run: RecentRun): { failed: number; companies: number } | undefined {
  const counts = run.counts as { failed?: unknown; companies?: unknown } | null;
  if (typeof counts?.failed !== "number" || typeof counts.companies !== "number") return undefined;
  return counts.companies > 0 ? { failed: counts.failed, companies: counts.companies } : undefined;
}

/**
 * Combines Temporal's view (does the schedule exist, is it paused, do workers poll its task
 * queue, is a run stuck) with the run table's (did recent runs succeed, when was the last
 * success) and the operator's settings into one state per scheduler.
 */
export async function schedulerStatus(
  options: StatusOptions,
  def: SchedulerDefinition,
): Promise<SchedulerStatus> {
  const { db } = options;
  const now = options.now ?? new Date();
  const base = { id: def.id, scheduleId: def.scheduleId, critical: def.critical };
  const recentCount = Math.max(options.errorThreshold, options.partialThreshold);
  const [facts, stored] = await Promise.all([
    temporalFacts(options, def),
    // The run table and settings: when PostgreSQL is unreachable the scheduler reports ERROR
    // with the reason, instead of the whole health request failing with a 500.
    Promise.all([
      db.schedulerSetting.findUnique({ where: { scheduleId: def.scheduleId } }),
      db.schedulerRun.findFirst({
        where: { scheduleId: def.scheduleId, outcome: { in: [...SUCCESSFUL_OUTCOMES] } },
        orderBy: { finishedAt: "desc" },
        select: { finishedAt: true },
      }),
      db.schedulerRun.findMany({
        where: { scheduleId: def.scheduleId, finishedAt: { not: null } },
        orderBy: { finishedAt: "desc" },
        take: recentCount,
        select: { outcome: true, error: true, counts: true, finishedAt: true },
      }),
    ]).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
  ]);
  const { schedule, pollers, toggles, stuck } = facts;
  if (stored instanceof Error) {
    return {
      ...base,
      lastSuccess: null,
      pollers,
      status: "ERROR",
      healthy: false,
      unreachable: "database",
      reason: `PostgreSQL: ${stored.message.trim().split("\n").at(-1) ?? "unreachable"}`,
    };
  }
  const [setting, lastSuccessRun, recentRuns] = stored;
  const recent: RecentRun[] = recentRuns;
  const lastSuccess = lastSuccessRun?.finishedAt ?? null;
  const common = { ...base, lastSuccess, pollers, toggles };

  if (schedule instanceof ScheduleNotFoundError) {
    if (!def.enabled) {
      return { ...common, status: "STOPPED", healthy: true, reason: "disabled by configuration" };
    }
    if (setting && !setting.enabled) {
      return {
        ...common,
        status: "STOPPED",
        healthy: true,
        reason: `stopped by ${setting.updatedBy ?? "an operator"}`,
      };
    }
    return {
      ...common,
      status: "STOPPED",
      healthy: false,
      reason: "the schedule does not exist (no worker has created it)",
    };
  }
  if (schedule instanceof Error) {
    return {
      ...common,
      status: "ERROR",
      healthy: false,
      unreachable: "temporal",
      reason: `Temporal: ${schedule.message}`,
    };
  }
  const drift = scheduleDrift(def, schedule);
  const notes = [
    ...(drift.includes("spec")
      ? ["the live schedule spec differs from the configuration (reconcile puts it back)"]
      : []),
    ...(skippedRuns(schedule) ? [skippedRuns(schedule) as string] : []),
  ];
  const withSchedule = { ...common, schedule, drift };
  const explain = (reason?: string) => {
    const all = [...(reason ? [reason] : []), ...notes];
    return all.length > 0 ? { reason: all.join("; ") } : {};
  };
  if (schedule.state.paused) {
    return {
      ...withSchedule,
      status: "PAUSED",
      healthy: true,
      ...explain(schedule.state.note || "paused"),
    };
  }

  const stuckRun = stuck[0];
  if (stuckRun) {
    return {
      ...withSchedule,
      status: "ERROR",
      healthy: false,
      ...explain(
        `run ${stuckRun.workflowId} is stuck: its workflow task failed ${stuckRun.attempts} times (${stuckRun.reason})`,
      ),
    };
  }

  const isSuccess = (run: RecentRun) =>
    (SUCCESSFUL_OUTCOMES as readonly string[]).includes(run.outcome);
  const failing = recent.slice(0, options.errorThreshold);
  if (failing.length >= options.errorThreshold && failing.every((run) => !isSuccess(run))) {
    const last = failing[0];
    return {
      ...withSchedule,
      status: "ERROR",
      healthy: false,
      ...explain(`the last ${failing.length} runs failed: ${last?.error ?? last?.outcome}`),
    };
  }
  // Success means success: a run where some units failed is PARTIAL, and PARTIAL for too long,
  // or with too many companies failing, is an ERROR.
  const partial = recent.slice(0, options.partialThreshold);
  if (partial.length >= options.partialThreshold && partial.every((r) => r.outcome === "PARTIAL")) {
    return {
      ...withSchedule,
      status: "ERROR",
      healthy: false,
      ...explain(`the last ${partial.length} runs were PARTIAL: ${partial[0]?.error ?? ""}`.trim()),
    };
  }
  const lastRun = recent[0];
  let partialNote: string | undefined;
  if (lastRun?.outcome === "PARTIAL") {
    const share = failedCompanies(lastRun);
    if (share && share.failed * 100 > share.companies * options.failedCompaniesPercent) {
      return {
        ...withSchedule,
        status: "ERROR",
        healthy: false,
        ...explain(
          `${share.failed} of ${share.companies} companies failed in the last run (more than ${options.failedCompaniesPercent}%): ${lastRun.error ?? ""}`.trim(),
        ),
      };
    }
    partialNote =
      `last run PARTIAL${share ? ` (${share.failed} of ${share.companies} companies failed)` : ""}: ${lastRun.error ?? ""}`.trim();
  }

  // The schedule has been active since it was created or last resumed (in our API, the Temporal
  // UI or CLI): health counts from then, so a resume or start raises no false alarm.
  const resumedAt = toggles.unpause?.at;
  const activeSince =
    resumedAt && resumedAt > schedule.info.createdAt ? resumedAt : schedule.info.createdAt;
  const activeFor = now.getTime() - activeSince.getTime();
  const freshPoll = pollers.some(
    (p) =>
      p.lastAccessTime &&
      now.getTime() - new Date(p.lastAccessTime).getTime() <= options.workerStaleMs,
  );
  if (!freshPoll) {
    if (activeFor > options.workerStaleMs) {
      return {
        ...withSchedule,
        status: "ERROR",
        healthy: false,
        ...explain(
          `no worker has polled task queue ${def.taskQueue} for ${Math.round(options.workerStaleMs / 1000)} s`,
        ),
      };
    }
    return {
      ...withSchedule,
      status: "STARTING",
      healthy: true,
      ...explain(`waiting for a worker to poll task queue ${def.taskQueue}`),
    };
  }

  // Dead man's switch: a schedule that should have run N times without a success is broken,
  // even when no run recorded a failure (runs that never start record nothing).
  const interval = intervalMs(schedule);
  const since = lastSuccess && lastSuccess > activeSince ? lastSuccess : activeSince;
  if (
    interval !== undefined &&
    now.getTime() - since.getTime() > interval * options.deadmanIntervals
  ) {
    return {
      ...withSchedule,
      status: "ERROR",
      healthy: false,
      ...explain(
        `no successful run for ${options.deadmanIntervals} intervals (since ${since.toISOString()})`,
      ),
    };
  }
  const ranSinceActive = lastRun?.finishedAt && lastRun.finishedAt >= activeSince;
  if (!ranSinceActive) {
    const next = schedule.info.nextActionTimes[0];
    return {
      ...withSchedule,
      status: "STARTING",
      healthy: true,
      ...explain(
        `first run ${schedule.info.runningActions.length > 0 ? "in progress" : `pending${next ? ` (due ${next.toISOString()})` : ""}`} since ${resumedAt && resumedAt > schedule.info.createdAt ? "the resume" : "the schedule was created"}`,
      ),
    };
  }
  return { ...withSchedule, status: "RUNNING", healthy: true, ...explain(partialNote) };
}

export function allSchedulerStatuses(
  options: StatusOptions,
  defs: SchedulerDefinition[],
): Promise<SchedulerStatus[]> {
  return Promise.all(defs.map((def) => schedulerStatus(options, def)));
}
