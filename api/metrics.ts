import { Hono } from "hono";
import type { PlatformMetrics } from "../control-plane/metrics.ts";

/**
 * `GET /metrics` in the Prometheus text format; mount with `app.route("/", metricsRoute(m))`.
 * Values are read from Temporal and the database (at most once per METRICS_CACHE_MS per
 * replica), so any replica answers the same and a load balancer may spread scrapes freely.
 */
export function metricsRoute({ registry }: PlatformMetrics): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    const body = await registry.metrics();
    c.header("content-type", registry.contentType);
    c.header("cache-control", "no-store");
    return c.body(body, 200);
  });
  return app;
}
