import type { SchedulerBacklog, SchedulerState, SchedulerStatus } from "./scheduler-status.ts";

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
      /** Beside the documented fields: why it is not RUNNING, and what waits for it. */
      reason?: string;
      backlog?: SchedulerBacklog;
    }
  >;
  /** Orphaned schedules (control-plane/schedule-orphans.ts), only when there are any. */
  orphans?: { scheduleId: string; reason: string }[];
}

/**
 * The documented health format. A critical scheduler (the default) that is not healthy makes the
 * answer unhealthy (503); a non-critical one (`<TYPE>_CRITICAL=false`) only degraded. Each
 * detail carries the reason when there is one; orphaned schedules degrade the answer.
 */
export function healthReport(
  statuses: SchedulerStatus[],
  now = new Date(),
  orphans: { scheduleId: string; reason: string }[] = [],
): HealthReport {
  const healthy = statuses.every((s) => s.healthy || !s.critical);
  const allGood =
    statuses.every((s) => s.status === "RUNNING" && s.healthy) && orphans.length === 0;
  return {
    healthy,
    status: !healthy ? "unhealthy" : allGood ? "healthy" : "degraded",
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
    ...(orphans.length > 0
      ? { orphans: orphans.map((o) => ({ scheduleId: o.scheduleId, reason: o.reason })) }
      : {}),
  };
}
