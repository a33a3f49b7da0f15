import type { Context } from "hono";
import { isSchedulerId } from "../domain/scheduler-id.ts";
import type { Flash } from "./dashboard-view.tsx";

/**
 * The dashboard's post-redirect-get: an action redirects to /admin with a code in the query
 * string, and the page turns the code back into a message. Only known codes and a valid
 * scheduler id are shown, so a crafted link cannot put text of its own on the page.
 */

export const ACTIONS = ["pause", "resume", "trigger"] as const;
export type DashboardAction = (typeof ACTIONS)[number];

const DONE: Record<DashboardAction, string> = {
  pause: "Paused",
  resume: "Resumed",
  trigger: "Triggered",
};
const FAILURES = {
  invalid: "the form was incomplete or invalid",
  unknown: "there is no such scheduler",
  conflict: "the action cannot be taken now",
  error: "Temporal or the database did not answer as expected; see the server log",
} as const;
export type FailureReason = keyof typeof FAILURES;

export function isAction(value: unknown): value is DashboardAction {
  return typeof value === "string" && (ACTIONS as readonly string[]).includes(value);
}

export function flashLocation(
  schedulerId: string | undefined,
  params: Record<string, string>,
): string {
  const query = new URLSearchParams(params);
  if (schedulerId) query.set("scheduler", schedulerId);
  return `/admin?${query.toString()}${schedulerId ? `#scheduler-${schedulerId}` : ""}`;
}

/** The flash message after an action, from the query string. */
export function flashFrom(c: Context): Flash | undefined {
  const scheduler = c.req.query("scheduler");
  const id = scheduler && isSchedulerId(scheduler) ? scheduler : undefined;
  const done = c.req.query("done");
  if (isAction(done) && id) {
    return {
      kind: "ok",
      message: done === "trigger" ? `Triggered ${id}: a run starts now.` : `${DONE[done]} ${id}.`,
    };
  }
  const failed = c.req.query("failed");
  const reason = c.req.query("reason");
  if (isAction(failed) && reason && reason in FAILURES) {
    return {
      kind: "error",
      message: `Could not ${failed} ${id ?? "the scheduler"}: ${FAILURES[reason as FailureReason]}.`,
    };
  }
  return undefined;
}
