import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Client } from "@temporalio/client";
import type { Database } from "../adapters/db/client.ts";
import type { SchedulerAdmin } from "../control-plane/admin-service.ts";
import { within } from "../control-plane/schedule-facts.ts";
import type { SchedulerDefinition } from "../control-plane/scheduler-registry.ts";
import { SCHEDULER_STATES } from "../control-plane/scheduler-state.ts";
import {
  healthReport,
  type SchedulerStatus,
  TEMPORAL_STATUS_TIMEOUT_MS,
} from "../control-plane/scheduler-status.ts";

/**
 * The open probes: /livez, /readyz and every scheduler's health (no token; load balancers,
 * Kubernetes and uptime checks call them). Plain handlers, not validated OpenAPI routes, so they
 * answer even when request validation could not; their documentation is registered beside them.
 */

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

export const SCHEDULER_HEALTH_PATH = "/api/admin/schedulers/health";

export interface ProbeDeps {
  client: Client;
  db: Database;
  admin: SchedulerAdmin;
  statusOf: (def: SchedulerDefinition) => Promise<SchedulerStatus>;
  /** Extra readiness checks of this process (its workers, its shutdown state). */
  readiness?: () => ReadinessCheck[];
}

export function probesApp({ client, db, admin, statusOf, readiness }: ProbeDeps) {
  const app = new OpenAPIHono();

  app.get("/livez", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const checks: ReadinessCheck[] = await Promise.all([
      within(client.workflowService.getSystemInfo({}), TEMPORAL_STATUS_TIMEOUT_MS, "Temporal")
        .then(() => ({ name: "temporal", ok: true }))
        .catch((error: Error) => ({ name: "temporal", ok: false, detail: error.message })),
      db.$queryRaw`SELECT 1`
        .then(() => ({ name: "postgres", ok: true }))
        .catch((error: Error) => ({
          name: "postgres",
          ok: false,
          detail: error.message.split("\n")[0],
        })),
    ]);
    checks.push(...(readiness?.() ?? []));
    const ready = checks.every((check) => check.ok);
    return c.json({ status: ready ? "ready" : "not ready", checks }, ready ? 200 : 503);
  });

  // GET and HEAD: HEAD answers with the status code only (Hono drops the body for HEAD).
  app.get(SCHEDULER_HEALTH_PATH, async (c) => {
    const [statuses, orphans] = await Promise.all([
      Promise.all(admin.definitions().map(statusOf)),
      // Reported when Temporal answers in time; an outage already shows in the statuses.
      within(admin.orphans(), TEMPORAL_STATUS_TIMEOUT_MS, "Temporal").catch(() => []),
    ]);
    const report = healthReport(statuses, new Date(), orphans);
    c.header("cache-control", "no-store");
    return c.json(report, report.healthy ? 200 : 503);
  });

  registerProbeDocs(app);
  return app;
}

// --- Documentation -------------------------------------------------------------------------

const Liveness = z.object({ status: z.literal("ok") }).openapi("Liveness");

const Readiness = z
  .object({
    status: z.enum(["ready", "not ready"]),
    checks: z.array(
      z.object({
        name: z.string().openapi({ example: "postgres" }),
        ok: z.boolean(),
        detail: z.string().optional().openapi({ description: "why the check failed" }),
      }),
    ),
  })
  .openapi("Readiness");

const SchedulerHealth = z
  .object({
    healthy: z.boolean(),
    status: z.enum(["healthy", "degraded", "unhealthy"]),
    timestamp: z.string().openapi({ example: "2024-01-15T10:30:00.000Z" }),
    schedulers: z.object({ total: z.number(), running: z.number(), errors: z.number() }),
    details: z.record(
      z.string(),
      z.object({
        status: z.enum(SCHEDULER_STATES),
        healthy: z.boolean(),
        lastSuccess: z.string().nullable(),
      }),
    ),
  })
  .openapi("SchedulerHealth");

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

function registerProbeDocs(app: OpenAPIHono): void {
  const registry = app.openAPIRegistry;
  registry.registerPath({
    method: "get",
    path: "/livez",
    tags: ["probes"],
    summary: "Liveness: the process answers (no dependency is checked)",
    responses: { 200: json(Liveness, "alive") },
  });
  registry.registerPath({
    method: "get",
    path: "/readyz",
    tags: ["probes"],
    summary: "Readiness: Temporal and PostgreSQL answer and the process is not shutting down",
    responses: {
      200: json(Readiness, "ready"),
      503: json(Readiness, "not ready; the failing checks say why"),
    },
  });
  for (const method of ["get", "head"] as const) {
    registry.registerPath({
      method,
      path: SCHEDULER_HEALTH_PATH,
      tags: ["probes"],
      summary:
        method === "get"
          ? "Every scheduler's health (no token needed)"
          : "The scheduler health as a status code only",
      responses: {
        200: method === "get" ? json(SchedulerHealth, "all healthy") : { description: "healthy" },
        503:
          method === "get"
            ? json(SchedulerHealth, "a scheduler is unhealthy")
            : { description: "unhealthy" },
      },
    });
  }
}
