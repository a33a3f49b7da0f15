import type { Client, ScheduleDescription } from "@temporalio/client";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import { readSchedulerSnapshot } from "./scheduler-snapshot.ts";
import {
  deriveState,
  type PollerView,
  type SchedulerState,
  type ScheduleToggles,
  type StateThresholds,
} from "./scheduler-state.ts";

/**
 * A scheduler's status as health, metrics, alerts and the admin API report it: the snapshot
 * read (control-plane/scheduler-snapshot.ts) with the state the pure rules derive from it
 * (control-plane/scheduler-state.ts), plus the facts callers show beside the state.
 */

export { type HealthReport, healthReport } from "./health-report.ts";
export { TEMPORAL_STATUS_TIMEOUT_MS, taskQueuePollers } from "./scheduler-snapshot.ts";
export type { PollerView, SchedulerState } from "./scheduler-state.ts";

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
  toggles?: ScheduleToggles;
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

export interface StatusOptions extends StateThresholds {
  client: Client;
  db: Database;
  namespace: string;
  now?: Date;
}

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

/** Reads one scheduler's snapshot and derives its state. */
export async function schedulerStatus(
  options: StatusOptions,
  def: SchedulerDefinition,
): Promise<SchedulerStatus> {
  const now = options.now ?? new Date();
  const { snapshot, description } = await readSchedulerSnapshot(
    {
      client: options.client,
      db: options.db,
      namespace: options.namespace,
      recentRuns: Math.max(options.errorThreshold, options.partialThreshold),
    },
    def,
  );
  const state = deriveState(snapshot, options, now);
  const base = { id: def.id, scheduleId: def.scheduleId, critical: def.critical };
  const { stored, schedule } = snapshot;
  if (stored.kind === "unreachable") {
    return { ...base, lastSuccess: null, pollers: snapshot.pollers, ...state };
  }
  const common = {
    ...base,
    lastSuccess: stored.lastSuccess,
    pollers: snapshot.pollers,
    toggles: snapshot.toggles,
  };
  if (schedule.kind !== "found" || !description) return { ...common, ...state };
  return { ...common, schedule: description, drift: schedule.schedule.drift, ...state };
}

export function allSchedulerStatuses(
  options: StatusOptions,
  defs: SchedulerDefinition[],
): Promise<SchedulerStatus[]> {
  return Promise.all(defs.map((def) => schedulerStatus(options, def)));
}
