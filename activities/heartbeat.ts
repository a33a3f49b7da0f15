import type { Context } from "@temporalio/activity";

/**
 * Heartbeats every third of the activity's heartbeat timeout until stopped, so a long but live
 * attempt (a slow transcript, a large batch file) is never mistaken for one whose worker died,
 * while a dead worker's attempt is retried after the timeout. An attempt shorter than a third of
 * the timeout never heartbeats; without a heartbeat timeout this does nothing.
 */
export function heartbeatWhileRunning(
  ctx: Context,
  details: () => unknown = () => undefined,
): () => void {
  const timeoutMs = ctx.info.heartbeatTimeoutMs;
  if (!timeoutMs) return () => undefined;
  const timer = setInterval(() => ctx.heartbeat(details()), Math.max(200, timeoutMs / 3));
  return () => clearInterval(timer);
}
