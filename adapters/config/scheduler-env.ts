/**
 * The scheduler platform's variables: whether this process runs schedulers, how runs are paced
 * and judged healthy, the per-type switches, history retention and the region that names
 * schedules. One area of the configuration schema (schema.ts joins them).
 */
import { hostname } from "node:os";
import { z } from "zod";
import { bool, cron, int, number, optionalText, REGION_NAME, timeZone } from "./env-values.ts";

/** The scheduler types' per-type switches (the seed's enabled / autoStart / critical). */
export const SCHEDULER_TYPE_ENV = {
  "csv-import": "CSV_IMPORT",
  "import-processing": "IMPORT_PROCESSING",
  "session-processing": "SESSION_PROCESSING",
  "batch-processing": "BATCH_PROCESSING",
} as const;
export type SchedulerTypeName = keyof typeof SCHEDULER_TYPE_ENV;

const region = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !REGION_NAME.test(value)) {
    ctx.addIssue({
      code: "custom",
      message: `expected lowercase letters, digits and dashes (used in schedule ids), got "${value}"`,
    });
  }
});

export const schedulerEnv = z.object({
  SCHEDULER_ENABLED: bool(true),
  SCHEDULER_AUTO_RESTART: bool(true),
  SCHEDULER_INSTANCE_ID: optionalText,
  SCHEDULER_TIME_ZONE: timeZone("UTC"),
  SCHEDULER_CATCHUP_WINDOW_MS: int(60_000, 10_000, 7 * 24 * 3_600_000),
  SCHEDULER_ERROR_THRESHOLD: int(3, 1, 100),
  WORKER_SHUTDOWN_GRACE_MS: int(30_000, 0, 3_600_000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: int(20, 1, 1_000),
  RUN_MAX_IN_FLIGHT: int(200, 1, 1_000),
  RUN_HISTORY_EVENT_BUDGET: int(9_000, 300, 40_000),
  SCHEDULER_RUN_DEADLINE_MS: int(0, 0, 24 * 3_600_000),
  BACKLOG_LAG_OBJECTIVE_SECONDS: int(3_600, 0, 30 * 24 * 3_600),
  ACTIVITY_HEARTBEAT_TIMEOUT_MS: int(30_000, 1_000, 3_600_000),
  WORKER_HEALTH_PORT: int(9090, 0, 65_535),
  // Number() semantics, not digits only: "1e3" and "0x50" have always been accepted here.
  WORKER_METRICS_PORT: number(
    (port) => Number.isInteger(port) && port >= 1 && port <= 65_535,
    "a port from 1 to 65535",
  ),
  SCHEDULER_DEADMAN_INTERVALS: int(3, 1, 1000),
  SCHEDULER_WORKER_STALE_MS: int(5 * 60_000, 10_000, 24 * 3_600_000),
  SCHEDULER_RECONCILE_INTERVAL_MS: int(5 * 60_000, 0, 24 * 3_600_000),
  SCHEDULER_PARTIAL_THRESHOLD: int(3, 1, 100),
  SCHEDULER_FAILED_COMPANIES_PERCENT: int(50, 1, 100),
  /** Run and action history older than this is pruned daily; 0 keeps it forever. */
  SCHEDULER_HISTORY_RETENTION_DAYS: int(30, 0, 36_500),
  SCHEDULER_HISTORY_RETENTION_INTERVAL: cron("17 3 * * *"),
  SCHEDULER_HISTORY_RETENTION_BATCH_SIZE: int(1_000, 1, 100_000),
  CSV_IMPORT_ENABLED: bool(true),
  CSV_IMPORT_AUTO_START: bool(true),
  CSV_IMPORT_CRITICAL: bool(true),
  IMPORT_PROCESSING_ENABLED: bool(true),
  IMPORT_PROCESSING_AUTO_START: bool(true),
  IMPORT_PROCESSING_CRITICAL: bool(true),
  SESSION_PROCESSING_ENABLED: bool(true),
  SESSION_PROCESSING_AUTO_START: bool(true),
  SESSION_PROCESSING_CRITICAL: bool(true),
  BATCH_PROCESSING_ENABLED: bool(true),
  BATCH_PROCESSING_AUTO_START: bool(true),
  BATCH_PROCESSING_CRITICAL: bool(true),
  REGION: region,
});

/** The `scheduler`, `historyRetention` and `region` parts of Config. */
export function schedulerSection(e: z.output<typeof schedulerEnv>) {
  const switches = (prefix: (typeof SCHEDULER_TYPE_ENV)[SchedulerTypeName]) => ({
    /** false: the type's schedules are removed and never created (its worker still drains runs). */
    enabled: e[`${prefix}_ENABLED`],
    /** false: a schedule created from configuration starts paused, with a note saying why. */
    autoStart: e[`${prefix}_AUTO_START`],
    /** false: this type's ERROR makes health degraded (200), not unhealthy (503). */
    critical: e[`${prefix}_CRITICAL`],
  });
  return {
    scheduler: {
      enabled: e.SCHEDULER_ENABLED,
      autoRestart: e.SCHEDULER_AUTO_RESTART,
      instanceId: e.SCHEDULER_INSTANCE_ID ?? `${hostname()}-${process.pid}`,
      timeZone: e.SCHEDULER_TIME_ZONE,
      catchupWindowMs: e.SCHEDULER_CATCHUP_WINDOW_MS,
      /** Consecutive failed runs after which a scheduler reports ERROR. */
      errorThreshold: e.SCHEDULER_ERROR_THRESHOLD,
      shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
      /** Activity slots of each worker (task queue) in a process. */
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
      /** Activities one scheduled run keeps in flight at most; workers' slots set the pace. */
      runWindow: e.RUN_MAX_IN_FLIGHT,
      /** History events after which a run's execution continues as new. */
      runHistoryBudget: e.RUN_HISTORY_EVENT_BUDGET,
      /** No new work after this long in a run (0: 90% of the schedule's interval). */
      runDeadlineMs: e.SCHEDULER_RUN_DEADLINE_MS,
      /** A stage whose oldest waiting item is older than this is ERROR (0: no objective). */
      backlogLagObjectiveMs: e.BACKLOG_LAG_OBJECTIVE_SECONDS * 1000,
      /** A scheduler whose last success is older than this many intervals is ERROR. */
      deadmanIntervals: e.SCHEDULER_DEADMAN_INTERVALS,
      /** A task queue without a polling worker for this long makes its schedulers ERROR. */
      workerStaleMs: e.SCHEDULER_WORKER_STALE_MS,
      /** A long activity silent this long is presumed dead (its worker died) and retried elsewhere. */
      heartbeatTimeoutMs: e.ACTIVITY_HEARTBEAT_TIMEOUT_MS,
      /** Worker processes answer /livez and /readyz here (0: no health server). */
      healthPort: e.WORKER_HEALTH_PORT,
      /** Worker processes expose the Temporal SDK's Prometheus metrics here (unset: off). */
      metricsPort: e.WORKER_METRICS_PORT,
      /** Workers reconcile their schedules (and remove orphans) this often; 0: at start only. */
      reconcileIntervalMs: e.SCHEDULER_RECONCILE_INTERVAL_MS,
      /** Consecutive PARTIAL runs after which a scheduler reports ERROR. */
      partialThreshold: e.SCHEDULER_PARTIAL_THRESHOLD,
      /** A run in which more than this percentage of companies failed makes a scheduler ERROR. */
      failedCompaniesPercent: e.SCHEDULER_FAILED_COMPANIES_PERCENT,
      /** Per scheduler type: enabled, autoStart, critical. */
      types: {
        "csv-import": switches("CSV_IMPORT"),
        "import-processing": switches("IMPORT_PROCESSING"),
        "session-processing": switches("SESSION_PROCESSING"),
        "batch-processing": switches("BATCH_PROCESSING"),
      } satisfies Record<SchedulerTypeName, unknown>,
    },
    /** The history-retention maintenance schedule (control-plane maintenance definitions). */
    historyRetention: {
      /** Finished runs, audit entries and settled notifications older than this go; 0: never. */
      days: e.SCHEDULER_HISTORY_RETENTION_DAYS,
      interval: e.SCHEDULER_HISTORY_RETENTION_INTERVAL,
      /** Rows deleted per statement: bounded work and locks, whatever the table's size. */
      batchSize: e.SCHEDULER_HISTORY_RETENTION_BATCH_SIZE,
    },
    /** Names this instance's schedules and task queues (unset: no region suffix). */
    region: e.REGION,
  };
}
