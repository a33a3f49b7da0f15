import { isSpanContextValid, trace } from "@opentelemetry/api";
import { asyncLocalStorage, type Context } from "@temporalio/activity";
import type { Logger } from "../adapters/logger.ts";

/**
 * The activities' logger: every line written while an activity runs carries that activity's
 * workflow id, run id, activity type, activity id and attempt, so a log search by run finds the
 * activities' lines. Activities receive the logger once, when the worker creates them; this one
 * looks up the activity running on the current async path (the SDK keeps its Context in
 * AsyncLocalStorage) at every call, and falls back to the plain logger outside an activity.
 * With tracing on (adapters/tracing.ts) the lines also carry the run's `traceId`.
 */
export function activityContextLogger(base: Logger): Logger {
  // One child per activity execution, created on its first log line, dropped with the Context.
  const children = new WeakMap<Context, Logger>();
  const current = (): Logger => {
    const context = asyncLocalStorage.getStore();
    if (context === undefined) return base;
    let child = children.get(context);
    if (child === undefined) {
      const { workflowExecution, activityType, activityId, attempt } = context.info;
      const span = trace.getActiveSpan()?.spanContext();
      child = base.child({
        workflowId: workflowExecution?.workflowId,
        runId: workflowExecution?.runId,
        activityType,
        activityId,
        attempt,
        ...(span && isSpanContextValid(span) ? { traceId: span.traceId } : {}),
      });
      children.set(context, child);
    }
    return child;
  };
  return new Proxy(base, {
    get(_target, property) {
      const logger = current();
      const value: unknown = Reflect.get(logger, property, logger);
      return typeof value === "function" ? value.bind(logger) : value;
    },
  });
}
