import type { Client } from "@temporalio/client";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { SUCCESSFUL_RUN_OUTCOMES } from "../domain/run-outcome.ts";
import { type LatenessSummary, latenessSummary } from "./metrics-reads.ts";
import { syncRunOutcomes } from "./run-outcomes.ts";
import { readRunProgress } from "./run-progress.ts";
import { decodeCursor, encodeCursor, type RunView, toRunView } from "./run-view.ts";
import { findOrphanedSchedules, type OrphanedSchedule } from "./schedule-orphans.ts";
import { liveSpec } from "./schedule-spec.ts";
import {
  ActionConflictError,
  createSchedulerActions,
  UnknownSchedulerError,
} from "./scheduler-actions.ts";
import { apiDefinitions, apiScheduleIds, type SchedulerDefinition } from "./scheduler-registry.ts";
import type { PollerView, SchedulerState } from "./scheduler-state.ts";
import { type SchedulerStatus, schedulerStatus, statusOptionsFor } from "./scheduler-status.ts";

/**
 * What operators see of each scheduler: its derived state (control-plane/scheduler-state.ts via
 * scheduler-status.ts), live schedule, workers, recent runs and run statistics. Temporal holds
 * the schedule state; the run table holds outcomes. The actions operators take are in
 * control-plane/scheduler-actions.ts; this service hands them on.
 */

export type { RunView } from "./run-view.ts";
export {
  ActionConflictError,
  type ActionRequest,
  type ActionResult,
  type SchedulerAction,
  UnknownSchedulerError,
} from "./scheduler-actions.ts";

export interface SchedulerView {
  id: string;
  name: string;
  description: string;
  scheduleId: string;
  taskQueue: string;
  workflowType: string;
  /** The live spec Temporal runs (rendered from its calendars); the configured one if absent. */
  spec: { cron: string; timeZone: string };
  /** The spec from configuration; reconcile puts the live spec back to this. */
  configuredSpec: { cron: string; timeZone: string };
  /** What differs between the live schedule and the configuration, e.g. ["spec"]. */
  drift: string[];
  policies: { overlap: string; catchupWindowMs: number };
  /** Runs Temporal skipped under the overlap policy or missed outside the catch-up window. */
  skipped: { overlap: number; missedCatchupWindow: number };
  /** `<TYPE>_CRITICAL`: whether this scheduler's ERROR makes health unhealthy (503). */
  critical: boolean;
  state: SchedulerState;
  healthy: boolean;
  reason: string | null;
  pause: { paused: boolean; note: string | null; by: string | null; at: string | null };
  nextRuns: string[];
  lastSuccess: string | null;
  lastRuns: RunView[];
  metrics: {
    runs: number;
    successes: number;
    failures: number;
    successRate: number | null;
    avgDurationMs: number | null;
    p95DurationMs: number | null;
  } & LatenessSummary;
  /** Temporal's counts of runs it did not start (null when the schedule cannot be read). */
  actions: { skippedOverlap: number | null; missedCatchupWindow: number | null };
  workers: PollerView[];
  temporalUiUrl: string;
}

/** Run statistics over this many most recent finished runs. */
const METRICS_WINDOW = 100;
const LAST_RUNS = 5;
/** The successful outcomes, as the text array the run statistics query compares against. */
const SUCCESSES = [...SUCCESSFUL_RUN_OUTCOMES];

export function createSchedulerAdmin(deps: { config: Config; client: Client; db: Database }) {
  const { config, client, db } = deps;
  const definitions = () => apiDefinitions(config);
  const statusOptions = () => statusOptionsFor(config, client, db);

  function definition(schedulerId: string): SchedulerDefinition {
    const def = definitions().find((d) => d.id === schedulerId);
    if (!def) throw new UnknownSchedulerError(schedulerId);
    return def;
  }

  async function runMetrics(
    scheduleId: string,
  ): Promise<Omit<SchedulerView["metrics"], keyof LatenessSummary>> {
    const [row] = await db.$queryRaw<
      {
        runs: bigint;
        successes: bigint;
        failures: bigint;
        avg: number | null;
        p95: number | null;
      }[]
    >`
      WITH recent AS (
        SELECT outcome, "durationMs" FROM "SchedulerRun"
        WHERE "scheduleId" = ${scheduleId} AND "finishedAt" IS NOT NULL
        ORDER BY "finishedAt" DESC LIMIT ${METRICS_WINDOW}
      )
      SELECT count(*) AS runs,
             count(*) FILTER (WHERE outcome::text = ANY(${SUCCESSES}::text[])) AS successes,
             count(*) FILTER (WHERE NOT outcome::text = ANY(${SUCCESSES}::text[])) AS failures,
             avg("durationMs")::float8 AS avg,
             percentile_cont(0.95) WITHIN GROUP (ORDER BY "durationMs")::float8 AS p95
      FROM recent`;
    const runs = Number(row?.runs ?? 0);
    const successes = Number(row?.successes ?? 0);
    return {
      runs,
      successes,
      failures: Number(row?.failures ?? 0),
      successRate: runs > 0 ? successes / runs : null,
      avgDurationMs: row?.avg === null || row?.avg === undefined ? null : Math.round(row.avg),
      p95DurationMs: row?.p95 === null || row?.p95 === undefined ? null : Math.round(row.p95),
    };
  }

  /** Run views, each RUNNING one with its live progress (two Temporal reads per running run). */
  async function runViews(
    def: SchedulerDefinition,
    rows: Prisma.SchedulerRunGetPayload<object>[],
  ): Promise<RunView[]> {
    return Promise.all(
      rows.map(async (row) => {
        const view = toRunView(row);
        if (row.outcome !== "RUNNING") return view;
        const progress = await readRunProgress(client, {
          schedulerId: def.id,
          workflowId: row.workflowId,
          executions: row.executions,
          counts: row.counts,
          updatedAt: row.updatedAt,
        });
        return { ...view, progress };
      }),
    );
  }

  async function pauseInfo(def: SchedulerDefinition, status: SchedulerStatus) {
    const schedule = status.schedule;
    const paused = schedule?.state.paused ?? false;
    const note = schedule?.state.note ?? null;
    if (!paused) return { paused, note: null, by: null, at: null };
    const last = await db.schedulerAction.findFirst({
      where: { scheduleId: def.scheduleId, action: { in: ["pause", "stop"] } },
      orderBy: { createdAt: "desc" },
    });
    // Temporal's record (the schedule's own history) knows the identity and time of every
    // pause, including one made in the Temporal UI or CLI; our audit knows the API's actor.
    const toggle = status.toggles?.pause;
    const ours =
      last &&
      last.note === note &&
      (!toggle || Math.abs(toggle.at.getTime() - last.createdAt.getTime()) < 60_000);
    if (ours) return { paused, note, by: last.actor, at: last.createdAt.toISOString() };
    if (toggle && toggle.note === note) {
      return {
        paused,
        note,
        by: toggle.by ?? "Temporal UI or CLI",
        at: toggle.at.toISOString(),
      };
    }
    return { paused, note, by: "Temporal UI or CLI", at: null };
  }

  async function view(def: SchedulerDefinition): Promise<SchedulerView> {
    const [status, lastRuns, metrics, lateness] = await Promise.all([
      schedulerStatus(statusOptions(), def),
      db.schedulerRun.findMany({
        where: { scheduleId: def.scheduleId },
        orderBy: { startedAt: "desc" },
        take: LAST_RUNS,
      }),
      runMetrics(def.scheduleId),
      latenessSummary(db, def.scheduleId, METRICS_WINDOW),
    ]);
    const schedule = status.schedule;
    const pause = await pauseInfo(def, status);
    const configuredSpec = { cron: def.cron, timeZone: def.timeZone };
    return {
      id: def.id,
      name: def.name,
      description: def.description,
      scheduleId: def.scheduleId,
      taskQueue: def.taskQueue,
      workflowType: def.workflowType,
      spec: schedule ? liveSpec(schedule) : configuredSpec,
      configuredSpec,
      drift: status.drift ?? [],
      policies: schedule
        ? {
            overlap: schedule.policies.overlap ?? def.overlap ?? "SKIP",
            catchupWindowMs: Number(schedule.policies.catchupWindow),
          }
        : { overlap: def.overlap ?? "SKIP", catchupWindowMs: def.catchupWindowMs },
      skipped: {
        overlap: schedule?.info.numActionsSkippedOverlap ?? 0,
        missedCatchupWindow: schedule?.info.numActionsMissedCatchupWindow ?? 0,
      },
      critical: def.critical,
      state: status.status,
      healthy: status.healthy,
      reason: status.reason ?? null,
      pause,
      nextRuns: schedule?.state.paused
        ? []
        : (schedule?.info.nextActionTimes ?? []).slice(0, 5).map((d) => d.toISOString()),
      lastSuccess: status.lastSuccess?.toISOString() ?? null,
      lastRuns: await runViews(def, lastRuns),
      metrics: { ...metrics, ...lateness },
      actions: {
        skippedOverlap: schedule?.info.numActionsSkippedOverlap ?? null,
        missedCatchupWindow: schedule?.info.numActionsMissedCatchupWindow ?? null,
      },
      workers: status.pollers,
      temporalUiUrl: `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/schedules/${encodeURIComponent(def.scheduleId)}`,
    };
  }

  async function list(): Promise<SchedulerView[]> {
    await syncRunOutcomes({ client, db, defs: definitions() });
    return Promise.all(definitions().map(view));
  }

  async function get(schedulerId: string): Promise<SchedulerView> {
    const def = definition(schedulerId);
    await syncRunOutcomes({ client, db, defs: [def] });
    return view(def);
  }

  /** One run by its workflow id, with its live progress while it runs; undefined if unknown. */
  async function run(schedulerId: string, workflowId: string): Promise<RunView | undefined> {
    const def = definition(schedulerId);
    await syncRunOutcomes({ client, db, defs: [def] });
    const row = await db.schedulerRun.findFirst({
      where: { scheduleId: def.scheduleId, workflowId },
      orderBy: { startedAt: "desc" },
    });
    return row ? (await runViews(def, [row]))[0] : undefined;
  }

  /** Keyset pagination over a scheduler's runs, newest first. */
  async function runs(schedulerId: string, page: { limit: number; before?: string | undefined }) {
    const def = definition(schedulerId);
    await syncRunOutcomes({ client, db, defs: [def] });
    const cursor = page.before ? decodeCursor(page.before) : undefined;
    if (page.before && !cursor) throw new ActionConflictError("invalid cursor");
    const rows = await db.schedulerRun.findMany({
      where: {
        scheduleId: def.scheduleId,
        ...(cursor
          ? {
              OR: [
                { startedAt: { lt: cursor.startedAt } },
                { startedAt: cursor.startedAt, id: { lt: cursor.id } },
              ],
            }
          : {}),
      },
      orderBy: [{ startedAt: "desc" }, { id: "desc" }],
      take: page.limit + 1,
    });
    const more = rows.length > page.limit;
    const pageRows = rows.slice(0, page.limit);
    const last = pageRows.at(-1);
    return {
      runs: await runViews(def, pageRows),
      nextCursor: more && last ? encodeCursor(last.startedAt, last.id) : null,
    };
  }

  const { act } = createSchedulerActions({
    client,
    db,
    definitions,
    definition,
    statusOf: (def) => schedulerStatus(statusOptions(), def),
  });

  /** Schedules with our memo that no current configuration owns (control-plane/schedule-orphans.ts). */
  async function orphans(): Promise<OrphanedSchedule[]> {
    return findOrphanedSchedules(client, config.temporal.namespace, apiScheduleIds(config));
  }

  return { definitions, list, get, runs, run, act, orphans };
}

export type SchedulerAdmin = ReturnType<typeof createSchedulerAdmin>;
