import type { Client } from "@temporalio/client";
import proto from "@temporalio/proto";
import type { ScheduleToggle, StuckRun } from "./scheduler-state.ts";

export type { ScheduleToggle, StuckRun } from "./scheduler-state.ts";

// The package is CommonJS: Node's ESM loader (tsx in production) sees only its default export.
const { temporal } = proto;

/**
 * What Temporal knows about a schedule beyond describe(): who paused or resumed it and when,
 * and whether one of its running workflows is stuck on a failing workflow task.
 */

/** Event pages read back from the newest; older toggles are beyond what we look at. */
const TOGGLE_EVENTS_PAGE = 100;

function eventTime(time: { seconds?: unknown; nanos?: number | null } | null | undefined): Date {
  const seconds = Number(time?.seconds ?? 0);
  return new Date(seconds * 1000 + Math.floor((time?.nanos ?? 0) / 1e6));
}

/**
 * The latest pause and unpause of a schedule. Every pause, unpause, trigger and backfill (from
 * the SDK, the CLI or the Temporal UI) reaches the schedule's own workflow as a `patch` signal
 * carrying the caller's identity, so its history knows who and when; describe() does not.
 */
export async function latestToggles(
  client: Client,
  namespace: string,
  scheduleId: string,
): Promise<{ pause?: ScheduleToggle; unpause?: ScheduleToggle }> {
  const response = await client.workflowService.getWorkflowExecutionHistoryReverse({
    namespace,
    execution: { workflowId: `temporal-sys-scheduler:${scheduleId}` },
    maximumPageSize: TOGGLE_EVENTS_PAGE,
  });
  const found: { pause?: ScheduleToggle; unpause?: ScheduleToggle } = {};
  for (const event of response.history?.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    const payload = signal?.input?.payloads?.[0];
    if (signal?.signalName !== "patch" || !payload?.data) continue;
    let patch: { pause?: string | null; unpause?: string | null };
    try {
      patch = temporal.api.schedule.v1.SchedulePatch.decode(payload.data);
    } catch {
      continue;
    }
    const by = signal.identity ? signal.identity : null;
    const at = eventTime(event.eventTime);
    if (patch.pause && !found.pause) found.pause = { kind: "pause", note: patch.pause, by, at };
    if (patch.unpause && !found.unpause)
      found.unpause = { kind: "unpause", note: patch.unpause, by, at };
    if (found.pause && found.unpause) break;
  }
  return found;
}

/**
 * A running workflow whose workflow task keeps failing (a non-determinism error after a deploy,
 * a bug in workflow code) makes no progress and never fails on its own: Temporal retries the
 * task forever. Its pending workflow task's attempt count and the last failure in its history
 * say so.
 */
export async function stuckRun(
  client: Client,
  namespace: string,
  workflowId: string,
): Promise<StuckRun | undefined> {
  const { raw } = await client.workflow.getHandle(workflowId).describe();
  const attempts = raw.pendingWorkflowTask?.attempt ?? 0;
  if (attempts < 2) return undefined;
  const response = await client.workflowService.getWorkflowExecutionHistoryReverse({
    namespace,
    execution: { workflowId },
    maximumPageSize: 20,
  });
  const failed = response.history?.events?.find(
    (e) => e.workflowTaskFailedEventAttributes,
  )?.workflowTaskFailedEventAttributes;
  const cause =
    failed?.cause !== undefined && failed.cause !== null
      ? temporal.api.enums.v1.WorkflowTaskFailedCause[failed.cause]
      : undefined;
  const message = failed?.failure?.message ?? "workflow task failing";
  return {
    workflowId,
    attempts,
    reason: `${cause ? `${cause.replace("WORKFLOW_TASK_FAILED_CAUSE_", "")}: ` : ""}${message.split("\n")[0]}`,
  };
}

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
