import { type Client, ScheduleNotFoundError, type ScheduleOverlapPolicy } from "@temporalio/client";
import type { Database } from "../adapters/db/client.ts";
import type { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { reconcileSchedule } from "./schedule-reconcile.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import type { SchedulerState } from "./scheduler-state.ts";
import type { SchedulerStatus } from "./scheduler-status.ts";

/**
 * What operators can do to a scheduler (pause, resume, trigger, backfill, start, stop, and
 * start or stop all), kept apart from what they see of it (control-plane/admin-service.ts).
 * Temporal holds the schedule state; SchedulerSetting keeps "stopped" across restarts and
 * SchedulerAction records who did what. Each answer carries the state derived after the action.
 */

export type SchedulerAction = "pause" | "resume" | "trigger" | "backfill" | "start" | "stop";

export interface ActionRequest {
  action: SchedulerAction | "startAll" | "stopAll";
  schedulerId?: string | undefined;
  note?: string | undefined;
  overlap?: ScheduleOverlapPolicy | undefined;
  start?: Date | undefined;
  end?: Date | undefined;
}

export interface ActionResult {
  schedulerId: string;
  action: SchedulerAction;
  state: SchedulerState;
  detail?: string;
}

export class UnknownSchedulerError extends Error {
  constructor(readonly schedulerId: string) {
    super(`unknown scheduler "${schedulerId}"`);
    this.name = "UnknownSchedulerError";
  }
}

export class ActionConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ActionConflictError";
  }
}
export function createSchedulerActions(deps: {
  client: Client;
  db: Database;
  definitions: () => SchedulerDefinition[];
  definition: (schedulerId: string) => SchedulerDefinition;
  /** The scheduler's status after an action (control-plane/scheduler-status.ts). */
  statusOf: (def: SchedulerDefinition) => Promise<SchedulerStatus>;
}) {
  const { client, db, definitions, definition } = deps;

  async function audit(
    def: SchedulerDefinition,
    action: string,
    actor: string,
    note?: string,
    details?: object,
  ) {
    await db.schedulerAction.create({
      data: {
        schedulerId: def.id,
        scheduleId: def.scheduleId,
        action,
        actor,
        note: note ?? null,
        details: (details ?? undefined) as Prisma.InputJsonValue | undefined,
      },
    });
  }

  async function setEnabled(
    def: SchedulerDefinition,
    enabled: boolean,
    actor: string,
    note?: string,
  ) {
    await db.schedulerSetting.upsert({
      where: { scheduleId: def.scheduleId },
      create: {
        scheduleId: def.scheduleId,
        schedulerId: def.id,
        enabled,
        updatedBy: actor,
        note: note ?? null,
      },
      update: { enabled, updatedBy: actor, note: note ?? null },
    });
  }

  async function actOn(
    def: SchedulerDefinition,
    request: ActionRequest,
    actor: string,
  ): Promise<ActionResult> {
    const action = request.action as SchedulerAction;
    const note = request.note ?? `${action} by ${actor}`;
    let detail: string | undefined;
    if (action === "start" && !def.enabled) {
      throw new ActionConflictError(
        `scheduler "${def.id}" is disabled by configuration (${def.workerType.toUpperCase().replaceAll("-", "_")}_ENABLED=false)`,
      );
    }
    try {
      detail = await perform(def, action, request, actor, note);
    } catch (error) {
      // Pause, resume, trigger and backfill need the schedule: a stopped one is a conflict.
      if (error instanceof ScheduleNotFoundError || (error as { code?: number }).code === 5) {
        throw new ActionConflictError(
          `scheduler "${def.id}" is stopped (its schedule does not exist): start it before ${action}`,
        );
      }
      throw error;
    }
    await audit(def, action, actor, request.note ?? note, {
      ...(request.overlap ? { overlap: request.overlap } : {}),
      ...(request.start ? { start: request.start.toISOString() } : {}),
      ...(request.end ? { end: request.end.toISOString() } : {}),
    });
    const status = await deps.statusOf(def);
    return { schedulerId: def.id, action, state: status.status, ...(detail ? { detail } : {}) };
  }

  async function perform(
    def: SchedulerDefinition,
    action: SchedulerAction,
    request: ActionRequest,
    actor: string,
    note: string,
  ): Promise<string | undefined> {
    const handle = client.schedule.getHandle(def.scheduleId);
    let detail: string | undefined;
    switch (action) {
      case "pause":
        await handle.pause(note);
        break;
      case "resume":
        await handle.unpause(note);
        break;
      case "trigger": {
        // Without an explicit policy the SDK would trigger with ALLOW_ALL; use the schedule's own.
        const overlap = request.overlap ?? def.overlap;
        await handle.trigger(overlap);
        detail = `triggered with overlap policy ${overlap}`;
        break;
      }
      case "backfill": {
        if (!request.start || !request.end)
          throw new ActionConflictError("backfill needs start and end");
        const overlap = request.overlap ?? "BUFFER_ALL";
        await handle.backfill({ start: request.start, end: request.end, overlap });
        detail = `backfill ${request.start.toISOString()} .. ${request.end.toISOString()} (${overlap})`;
        break;
      }
      case "start":
        await setEnabled(def, true, actor, request.note);
        detail = `schedule ${await reconcileSchedule(client, def)}`;
        if ((await handle.describe()).state.paused) await handle.unpause(note);
        break;
      case "stop":
        // Persisted first, so workers reconciling on restart do not bring it back.
        await setEnabled(def, false, actor, request.note);
        await handle.delete().catch(() => undefined);
        break;
    }
    return detail;
  }

  async function act(request: ActionRequest, actor: string): Promise<ActionResult[]> {
    if (request.action === "startAll" || request.action === "stopAll") {
      const single = request.action === "startAll" ? "start" : "stop";
      const results: ActionResult[] = [];
      for (const def of definitions())
        results.push(await actOn(def, { ...request, action: single }, actor));
      return results;
    }
    if (!request.schedulerId) throw new ActionConflictError(`${request.action} needs schedulerId`);
    return [await actOn(definition(request.schedulerId), request, actor)];
  }
  return { act };
}
