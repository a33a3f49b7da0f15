import { type Client, type ScheduleDescription, ScheduleNotFoundError } from "@temporalio/client";
import proto from "@temporalio/proto";
import type { Database } from "../adapters/db/client.ts";
import { SUCCESSFUL_RUN_OUTCOMES } from "../domain/run-outcome.ts";
import { latestToggles, stuckRun, within } from "./schedule-facts.ts";
import { scheduleDrift } from "./schedule-reconcile.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import type {
  PollerView,
  ScheduleRead,
  SchedulerSnapshot,
  ScheduleToggles,
  StoredRead,
  StuckRun,
} from "./scheduler-state.ts";

/**
 * The reading half of a scheduler's status: one pass over Temporal (describe, task-queue
 * pollers, pause history, stuck runs) and PostgreSQL (setting, last success, recent runs) that
 * turns their answers, or their failures, into a plain SchedulerSnapshot. Deciding what the
 * facts mean is control-plane/scheduler-state.ts's job; nothing here judges them.
 */

// The package is CommonJS: Node's ESM loader (tsx in production) sees only its default export.
const { temporal } = proto;

/** Health must answer within 2 s: each Temporal call gets this long. */
export const TEMPORAL_STATUS_TIMEOUT_MS = 1_500;

export interface SnapshotSource {
  client: Client;
  db: Database;
  namespace: string;
  /** How many of the latest finished runs to read: the largest run-count threshold. */
  recentRuns: number;
}

/** A snapshot and, when Temporal answered, the schedule description it was taken from. */
export interface SchedulerRead {
  snapshot: SchedulerSnapshot;
  description?: ScheduleDescription;
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

interface TemporalFacts {
  schedule: ScheduleDescription | Error;
  pollers: PollerView[];
  toggles: ScheduleToggles;
  stuck: StuckRun[];
}

/** Everything Temporal says about one schedule, or the error when it does not answer in time. */
async function temporalFacts(
  source: SnapshotSource,
  def: SchedulerDefinition,
): Promise<TemporalFacts> {
  const { client, namespace } = source;
  const deadline = Date.now() + TEMPORAL_STATUS_TIMEOUT_MS;
  const call = <T>(what: string, fn: () => Promise<T>) =>
    within(client.withDeadline(deadline, fn), TEMPORAL_STATUS_TIMEOUT_MS, what);
  const schedule = await call("Temporal", () =>
    client.schedule.getHandle(def.scheduleId).describe(),
  ).catch(toError);
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

/** The run table and settings; a PostgreSQL failure becomes a fact, not an exception. */
async function storedFacts(source: SnapshotSource, def: SchedulerDefinition): Promise<StoredRead> {
  const { db } = source;
  const read = await Promise.all([
    db.schedulerSetting.findUnique({ where: { scheduleId: def.scheduleId } }),
    db.schedulerRun.findFirst({
      where: { scheduleId: def.scheduleId, outcome: { in: [...SUCCESSFUL_RUN_OUTCOMES] } },
      orderBy: { finishedAt: "desc" },
      select: { finishedAt: true },
    }),
    db.schedulerRun.findMany({
      where: { scheduleId: def.scheduleId, finishedAt: { not: null } },
      orderBy: { finishedAt: "desc" },
      take: source.recentRuns,
      select: { outcome: true, error: true, counts: true, finishedAt: true },
    }),
  ]).catch(toError);
  if (read instanceof Error) return { kind: "unreachable", message: read.message };
  const [setting, lastSuccessRun, recentRuns] = read;
  return {
    kind: "read",
    setting: setting && { enabled: setting.enabled, updatedBy: setting.updatedBy },
    lastSuccess: lastSuccessRun?.finishedAt ?? null,
    recentRuns,
  };
}

function scheduleRead(
  def: SchedulerDefinition,
  schedule: ScheduleDescription | Error,
): ScheduleRead {
  if (schedule instanceof ScheduleNotFoundError) return { kind: "missing" };
  if (schedule instanceof Error) return { kind: "unreachable", message: schedule.message };
  return {
    kind: "found",
    schedule: {
      paused: schedule.state.paused,
      note: schedule.state.note ?? "",
      createdAt: schedule.info.createdAt,
      nextActionTimes: schedule.info.nextActionTimes,
      runningActions: schedule.info.runningActions.length,
      skippedOverlap: schedule.info.numActionsSkippedOverlap,
      missedCatchupWindow: schedule.info.numActionsMissedCatchupWindow,
      drift: scheduleDrift(def, schedule),
    },
  };
}

/** Reads Temporal and PostgreSQL side by side into one snapshot of the scheduler. */
export async function readSchedulerSnapshot(
  source: SnapshotSource,
  def: SchedulerDefinition,
): Promise<SchedulerRead> {
  const [facts, stored] = await Promise.all([temporalFacts(source, def), storedFacts(source, def)]);
  const snapshot: SchedulerSnapshot = {
    enabled: def.enabled,
    taskQueue: def.taskQueue,
    schedule: scheduleRead(def, facts.schedule),
    stored,
    pollers: facts.pollers,
    toggles: facts.toggles,
    stuck: facts.stuck,
  };
  return facts.schedule instanceof Error ? { snapshot } : { snapshot, description: facts.schedule };
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
