import { type Client, type ScheduleDescription, ScheduleNotFoundError } from "@temporalio/client";
import type { Database } from "./db.ts";
import type { SchedulerDefinition } from "./schedulers.ts";

export type SchedulerState = "STOPPED" | "STARTING" | "RUNNING" | "PAUSED" | "ERROR";

export interface SchedulerStatus {
  id: string;
  scheduleId: string;
  status: SchedulerState;
  /** RUNNING and PAUSED (an operator's decision) are healthy; ERROR and STOPPED are not. */
  healthy: boolean;
  lastSuccess: Date | null;
  /** Why the scheduler is not RUNNING, for operators. */
  reason?: string;
  pauseNote?: string;
  schedule?: ScheduleDescription;
}

const SUCCESSFUL_OUTCOMES = ["SUCCEEDED", "PARTIAL"] as const;

/**
 * Combines Temporal's view (does the schedule exist, is it paused) with the run table's
 * (did recent runs succeed) into one state per scheduler.
 */
export async function schedulerStatus(
  client: Client,
  db: Database,
  def: SchedulerDefinition,
  errorThreshold: number,
): Promise<SchedulerStatus> {
  const base = { id: def.id, scheduleId: def.scheduleId };
  const [schedule, lastSuccess, recent] = await Promise.all([
    client.schedule
      .getHandle(def.scheduleId)
      .describe()
      .catch((error: unknown) => error as Error),
    db.schedulerRun.findFirst({
      where: { scheduleId: def.scheduleId, outcome: { in: [...SUCCESSFUL_OUTCOMES] } },
      orderBy: { finishedAt: "desc" },
      select: { finishedAt: true },
    }),
    db.schedulerRun.findMany({
      where: { scheduleId: def.scheduleId, finishedAt: { not: null } },
      orderBy: { finishedAt: "desc" },
      take: errorThreshold,
      select: { outcome: true, error: true },
    }),
  ]);
  const last = lastSuccess?.finishedAt ?? null;

  if (schedule instanceof ScheduleNotFoundError) {
    return {
      ...base,
      status: "STOPPED",
      healthy: false,
      lastSuccess: last,
      reason: "schedule does not exist",
    };
  }
  if (schedule instanceof Error) {
    return {
      ...base,
      status: "ERROR",
      healthy: false,
      lastSuccess: last,
      reason: `Temporal: ${schedule.message}`,
    };
  }
  const pauseNote = schedule.state.note ?? undefined;
  if (schedule.state.paused) {
    return {
      ...base,
      status: "PAUSED",
      healthy: true,
      lastSuccess: last,
      pauseNote,
      reason: "paused",
      schedule,
    };
  }
  const failing =
    recent.length >= errorThreshold &&
    recent.every((run) => !(SUCCESSFUL_OUTCOMES as readonly string[]).includes(run.outcome));
  if (failing) {
    return {
      ...base,
      status: "ERROR",
      healthy: false,
      lastSuccess: last,
      reason: `last ${recent.length} runs failed: ${recent[0]?.error ?? recent[0]?.outcome}`,
      schedule,
    };
  }
  return { ...base, status: "RUNNING", healthy: true, lastSuccess: last, schedule };
}

export interface HealthReport {
  healthy: boolean;
  status: "healthy" | "degraded" | "unhealthy";
  timestamp: string;
  schedulers: { total: number; running: number; errors: number };
  details: Record<string, { status: SchedulerState; healthy: boolean; lastSuccess: string | null }>;
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
        { status: s.status, healthy: s.healthy, lastSuccess: s.lastSuccess?.toISOString() ?? null },
      ]),
    ),
  };
}
