import { type Client, type ScheduleDescription, ScheduleNotFoundError } from "@temporalio/client";
import proto from "@temporalio/proto";
import type { Config } from "./config.ts";
import type { Database } from "./db.ts";
import type { SchedulerDefinition } from "./schedulers.ts";

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
  /** What waits for this scheduler in PostgreSQL (lib/backlog.ts), when it was read. */
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

/**
 * Combines Temporal's view (does the schedule exist, is it paused, do workers poll its task
 * queue) with the run table's (did recent runs succeed, when was the last success) and the
 * operator's settings into one state per scheduler.
 */
export async function schedulerStatus(
  options: StatusOptions,
  def: SchedulerDefinition,
): Promise<SchedulerStatus> {
  const { client, db } = options;
  const now = options.now ?? new Date();
  const base = { id: def.id, scheduleId: def.scheduleId };
  const [schedule, stored, pollers] = await Promise.all([
    client.schedule
      .getHandle(def.scheduleId)
      .describe()
      .catch((error: unknown) => error as Error),
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
        take: options.errorThreshold,
        select: { outcome: true, error: true },
      }),
    ]).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
    taskQueuePollers(client, options.namespace, def.taskQueue).catch(() => [] as PollerView[]),
  ]);
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
  const [setting, lastSuccessRun, recent] = stored;
  const lastSuccess = lastSuccessRun?.finishedAt ?? null;
  const common = { ...base, lastSuccess, pollers };

  if (schedule instanceof ScheduleNotFoundError) {
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
  const withSchedule = { ...common, schedule };
  if (schedule.state.paused) {
    return {
      ...withSchedule,
      status: "PAUSED",
      healthy: true,
      reason: schedule.state.note ?? "paused",
    };
  }

  const failing =
    recent.length >= options.errorThreshold &&
    recent.every((run) => !(SUCCESSFUL_OUTCOMES as readonly string[]).includes(run.outcome));
  if (failing) {
    const last = recent[0];
    return {
      ...withSchedule,
      status: "ERROR",
      healthy: false,
      reason: `the last ${recent.length} runs failed: ${last?.error ?? last?.outcome}`,
    };
  }

  const existedFor = now.getTime() - schedule.info.createdAt.getTime();
  const freshPoll = pollers.some(
    (p) =>
      p.lastAccessTime &&
      now.getTime() - new Date(p.lastAccessTime).getTime() <= options.workerStaleMs,
  );
  if (!freshPoll && existedFor > options.workerStaleMs) {
    return {
      ...withSchedule,
      status: "ERROR",
      healthy: false,
      reason: `no worker has polled task queue ${def.taskQueue} for ${Math.round(options.workerStaleMs / 1000)} s`,
    };
  }

  // Dead man's switch: a schedule that should have run N times without a success is broken,
  // even when no run recorded a failure (runs that never start record nothing).
  const interval = intervalMs(schedule);
  if (interval !== undefined) {
    const window = interval * options.deadmanIntervals;
    const since = lastSuccess ?? schedule.info.createdAt;
    if (now.getTime() - since.getTime() > window) {
      return {
        ...withSchedule,
        status: "ERROR",
        healthy: false,
        reason: `no successful run for ${options.deadmanIntervals} intervals (since ${since.toISOString()})`,
      };
    }
  }
  return { ...withSchedule, status: "RUNNING", healthy: true };
}

export function allSchedulerStatuses(
  options: StatusOptions,
  defs: SchedulerDefinition[],
): Promise<SchedulerStatus[]> {
  return Promise.all(defs.map((def) => schedulerStatus(options, def)));
}

export interface HealthReport {
  healthy: boolean;
  status: "healthy" | "degraded" | "unhealthy";
  timestamp: string;
  schedulers: { total: number; running: number; errors: number };
  details: Record<
    string,
    {
      status: SchedulerState;
      healthy: boolean;
      lastSuccess: string | null;
      /** Beside the documented fields: why it is not RUNNING, and what waits. */
      reason?: string;
      backlog?: SchedulerBacklog;
    }
  >;
}

/** The documented health format. */
export function healthReport(statuses: SchedulerStatus[], now = new Date()): HealthReport {
  const healthy = statuses.every((s) => s.healthy);
  const allRunning = statuses.every((s) => s.status === "RUNNING");
  return {
    healthy,
    status: !healthy ? "unhealthy" : allRunning ? "healthy" : "degraded",
    timestamp: now.toISOString(),
    schedulers: {
      total: statuses.length,
      running: statuses.filter((s) => s.status === "RUNNING").length,
      errors: statuses.filter((s) => !s.healthy).length,
    },
    details: Object.fromEntries(
      statuses.map((s) => [
        s.id,
        {
          status: s.status,
          healthy: s.healthy,
          lastSuccess: s.lastSuccess?.toISOString() ?? null,
          ...(s.reason ? { reason: s.reason } : {}),
          ...(s.backlog ? { backlog: s.backlog } : {}),
        },
      ]),
    ),
  };
}
