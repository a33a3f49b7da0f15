import {
  type Client,
  ScheduleAlreadyRunning,
  type ScheduleDescription,
  ScheduleNotFoundError,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
  type Workflow,
} from "@temporalio/client";
import type { Logger } from "../adapters/logger.ts";
import { specMatches } from "./schedule-spec.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";

export type ReconcileAction = "created" | "updated" | "unchanged";

/** Every schedule this platform creates has an id starting with this. */
export const SCHEDULE_ID_PREFIX = "livedash-";

/**
 * The server hands back calendars, not the cron string we sent, so the cron and time zone we
 * applied are kept in the action's memo (visible on every started run too) and compared there.
 */
export const SPEC_MEMO_KEY = "livedashSchedule";

function specFingerprint(def: SchedulerDefinition): string {
  return `${def.cron} @ ${def.timeZone}`;
}

function desiredSpec(def: SchedulerDefinition): ScheduleSpec {
  return { cronExpressions: [def.cron], timezone: def.timeZone };
}

function desiredAction(def: SchedulerDefinition): ScheduleOptionsStartWorkflowAction<Workflow> {
  return {
    type: "startWorkflow",
    workflowType: def.workflowType,
    taskQueue: def.taskQueue,
    workflowId: def.scheduleId,
    args: def.workflowArgs,
    workflowRunTimeout: def.runTimeoutMs,
    memo: { [SPEC_MEMO_KEY]: specFingerprint(def), schedulerId: def.id },
  };
}

function desiredPolicies(def: SchedulerDefinition) {
  return { overlap: def.overlap, catchupWindow: def.catchupWindowMs, pauseOnFailure: false };
}

/** What differs between the running schedule and the configuration; empty when in sync. */
export function scheduleDrift(def: SchedulerDefinition, current: ScheduleDescription): string[] {
  const drift: string[] = [];
  const action = current.action;
  if (action.type !== "startWorkflow") return ["action"];
  // The memo says what we last applied; the live calendars say what Temporal runs (an edit in
  // the Temporal UI changes only those).
  if (
    action.memo?.[SPEC_MEMO_KEY] !== specFingerprint(def) ||
    !specMatches(def.cron, def.timeZone, current)
  )
    drift.push("spec");
  if (action.workflowType !== def.workflowType) drift.push("workflowType");
  if (action.taskQueue !== def.taskQueue) drift.push("taskQueue");
  if (JSON.stringify(action.args ?? []) !== JSON.stringify(def.workflowArgs)) drift.push("args");
  if (Number(action.workflowRunTimeout ?? 0) !== def.runTimeoutMs) drift.push("runTimeout");
  if (current.policies.overlap !== def.overlap) drift.push("overlap");
  if (current.policies.catchupWindow !== def.catchupWindowMs) drift.push("catchupWindow");
  return drift;
}

/**
 * Makes one schedule match the configuration: creates it when missing, updates spec, action and
 * policies when they drifted, and leaves the paused state (and its note) exactly as an operator
 * left it. Safe to run concurrently from several replicas.
 */
export async function reconcileSchedule(
  client: Client,
  def: SchedulerDefinition,
  log?: Logger,
): Promise<ReconcileAction> {
  const handle = client.schedule.getHandle(def.scheduleId);
  let current: ScheduleDescription | undefined;
  try {
    current = await handle.describe();
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) throw error;
  }

  if (!current) {
    try {
      await client.schedule.create({
        scheduleId: def.scheduleId,
        spec: desiredSpec(def),
        action: desiredAction(def),
        policies: desiredPolicies(def),
        state: def.autoStart
          ? { paused: false, note: `created from configuration (${specFingerprint(def)})` }
          : { paused: true, note: autoStartNote(def) },
      });
      log?.info(
        { scheduleId: def.scheduleId, cron: def.cron, paused: !def.autoStart },
        "schedule created",
      );
      return "created";
    } catch (error) {
      // Another replica created it between our describe and create: reconcile against theirs.
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
      current = await handle.describe();
    }
  }

  const drift = scheduleDrift(def, current);
  if (drift.length === 0) return "unchanged";
  await handle.update((previous) => ({
    ...previous,
    spec: desiredSpec(def),
    action: desiredAction(def),
    policies: desiredPolicies(def),
    // Keep the operator's pause and note: configuration never unpauses a schedule.
    state: { paused: previous.state.paused, note: previous.state.note },
  }));
  log?.info({ scheduleId: def.scheduleId, drift }, "schedule updated from configuration");
  return "updated";
}

/** The note of a schedule created paused by `<TYPE>_AUTO_START=false`. */
export function autoStartNote(def: SchedulerDefinition): string {
  const prefix = def.workerType.toUpperCase().replaceAll("-", "_");
  return `created paused: ${prefix}_AUTO_START=false (resume it to start ${def.id})`;
}

/**
 * Reconciles every schedule; one an operator stopped (listed in `stopped`) is left absent, so a
 * worker restart does not bring it back, and one whose type is disabled (`<TYPE>_ENABLED=false`)
 * is removed.
 */
export async function reconcileSchedules(
  client: Client,
  defs: SchedulerDefinition[],
  log?: Logger,
  stopped: ReadonlySet<string> = new Set(),
): Promise<Record<string, ReconcileAction | "stopped" | "disabled">> {
  const results: Record<string, ReconcileAction | "stopped" | "disabled"> = {};
  for (const def of defs) {
    if (!def.enabled) {
      const removed = await client.schedule
        .getHandle(def.scheduleId)
        .delete()
        .then(() => true)
        .catch(() => false);
      if (removed) log?.info({ scheduleId: def.scheduleId }, "schedule removed: type disabled");
      results[def.scheduleId] = "disabled";
      continue;
    }
    if (stopped.has(def.scheduleId)) {
      await client.schedule
        .getHandle(def.scheduleId)
        .delete()
        .catch(() => undefined);
      results[def.scheduleId] = "stopped";
      continue;
    }
    results[def.scheduleId] = await reconcileSchedule(client, def, log);
  }
  return results;
}

/**
 * Brings a schedule's first run forward (npm run dev, so data shows up before the first cron
 * tick): only a schedule that exists, is not paused and has never started a run. A paused or
 * stopped schedule is never run because a process started.
 */
export async function kickStartSchedules(
  client: Client,
  defs: SchedulerDefinition[],
): Promise<string[]> {
  const triggered: string[] = [];
  for (const def of defs) {
    const handle = client.schedule.getHandle(def.scheduleId);
    const described = await handle.describe().catch(() => undefined);
    if (!described || described.state.paused) continue;
    if (described.info.numActionsTaken > 0 || described.info.recentActions.length > 0) continue;
    await handle.trigger(def.overlap);
    triggered.push(def.scheduleId);
  }
  return triggered;
}
