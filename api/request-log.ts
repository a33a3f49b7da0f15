import type { MiddlewareHandler } from "hono";
import type { Logger } from "../adapters/logger.ts";

/**
 * One structured log line per request (method, path, status, duration, request id).
 * Hand-written on purpose: Hono's logger() prints unstructured text to the console; the platform
 * logs JSON through its own logger, with the request id requestId() assigned.
 */
export function requestLog(log: Logger): MiddlewareHandler<{ Variables: { requestId: string } }> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    log.info(
      {
        requestId: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      "request",
    );
  };
}
