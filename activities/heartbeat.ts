import type { Context } from "@temporalio/activity";

/**
 * Heartbeats every third of the activity's heartbeat timeout until stopped, so a long but live
 * attempt (a slow transcript, a large batch file) is never mistaken for one whose worker died,
 * while a dead worker's attempt is retried after the timeout. An attempt shorter than a third of
 * the timeout never heartbeats; without a heartbeat timeout this does nothing. `maxIntervalMs`
 * beats more often where the details are live progress (the CSV import's rows read).
 */
export function heartbeatWhileRunning(
  ctx: Context,
  details: () => unknown = () => undefined,
  options: { maxIntervalMs?: number } = {},
): () => void {
  const timeoutMs = ctx.info.heartbeatTimeoutMs;
  if (!timeoutMs) return () => undefined;
  const everyMs = Math.max(200, Math.min(options.maxIntervalMs ?? timeoutMs, timeoutMs / 3));
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return () => clearInterval(timer);
}
