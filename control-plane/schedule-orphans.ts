import type { Client } from "@temporalio/client";
import type { Logger } from "../adapters/logger.ts";
import { SCHEDULE_ID_PREFIX, SPEC_MEMO_KEY } from "./schedule-reconcile.ts";
import { taskQueuePollers } from "./scheduler-snapshot.ts";

/**
 * Orphaned schedules: ours (the `livedash-` id and our memo on the action) but part of no
 * current configuration, e.g. the old region's schedules after REGION changed, or a scheduler
 * that no longer exists. Left alone they keep starting runs into a task queue nobody polls.
 *
 * The rule (README, Deployment):
 * - an orphan is a schedule with our memo whose id is not one of the schedule ids this process
 *   knows (a worker: its region's; the API: those of API_REGIONS) AND whose task queue has no
 *   polling worker: a queue that is still polled belongs to a live deployment, such as another
 *   region sharing the namespace;
 * - the API reports orphans (GET /api/admin/orphaned-schedules, health's `orphans`);
 * - a worker's reconcile (at start and every SCHEDULER_RECONCILE_INTERVAL_MS) deletes orphans
 *   that are not paused. A paused orphan is kept and reported: a pause is an operator's decision,
 *   and deleting it would lose the decision if that deployment comes back.
 */

export interface OrphanedSchedule {
  scheduleId: string;
  schedulerId: string | null;
  taskQueue: string | null;
  workflowType: string | null;
  paused: boolean;
  pollers: number;
  reason: string;
}

/** Schedules that carry our memo, are not in `known`, and whose task queue nobody polls. */
export async function findOrphanedSchedules(
  client: Client,
  namespace: string,
  known: ReadonlySet<string>,
): Promise<OrphanedSchedule[]> {
  const candidates: string[] = [];
  for await (const summary of client.schedule.list({ pageSize: 200 })) {
    if (summary.scheduleId.startsWith(SCHEDULE_ID_PREFIX) && !known.has(summary.scheduleId)) {
      candidates.push(summary.scheduleId);
    }
  }
  const orphans: OrphanedSchedule[] = [];
  for (const scheduleId of candidates) {
    const described = await client.schedule
      .getHandle(scheduleId)
      .describe()
      .catch(() => undefined);
    const action = described?.action;
    if (!described || action?.type !== "startWorkflow") continue;
    if (action.memo?.[SPEC_MEMO_KEY] === undefined) continue; // not one of ours
    const pollers = await taskQueuePollers(client, namespace, action.taskQueue);
    if (pollers.length > 0) continue; // a live deployment (another region) runs it
    const schedulerId = action.memo?.schedulerId;
    orphans.push({
      scheduleId,
      schedulerId: typeof schedulerId === "string" ? schedulerId : null,
      taskQueue: action.taskQueue,
      workflowType: action.workflowType,
      paused: described.state.paused,
      pollers: pollers.length,
      reason: `not in this deployment's configuration and no worker polls ${action.taskQueue}${described.state.paused ? " (paused: kept until an operator deletes it)" : ""}`,
    });
  }
  return orphans;
}

/** Deletes the orphans that are not paused; returns their ids. */
export async function removeOrphanedSchedules(
  client: Client,
  namespace: string,
  known: ReadonlySet<string>,
  log?: Logger,
): Promise<string[]> {
  const removed: string[] = [];
  for (const orphan of await findOrphanedSchedules(client, namespace, known)) {
    if (orphan.paused) {
      log?.warn({ scheduleId: orphan.scheduleId }, "orphaned schedule is paused: kept");
      continue;
    }
    await client.schedule
      .getHandle(orphan.scheduleId)
      .delete()
      .catch(() => undefined);
    log?.warn(
      { scheduleId: orphan.scheduleId, reason: orphan.reason },
      "orphaned schedule removed",
    );
    removed.push(orphan.scheduleId);
  }
  return removed;
}
